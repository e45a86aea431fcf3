"""The scheduler's deployment lock belongs to one deployment: others on the same database server keep their own."""

from __future__ import annotations

from widget.sync.dispatch import DeploymentLock


def test_it_gives_each_deployment_sharing_a_database_server_a_scheduler_lock_of_its_own(make_app):
    # On PostgreSQL the two deployments are two schemas of one database; on SQLite, two instance folders.
    ours, theirs = make_app("ours"), make_app("theirs")
    holder = DeploymentLock(ours)
    assert holder.acquire() is True
    try:
        their_lock = DeploymentLock(theirs)
        assert their_lock.acquire() is True, "another deployment's scheduler kept this one from starting"
        their_lock.release()
        assert DeploymentLock(ours).acquire() is False  # our own second scheduler still waits
    finally:
        holder.release()
