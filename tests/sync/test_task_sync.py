"""Two-way task sync against the sandbox: changes and deletes both ways, a crash between Exchange and the local
commit, and a task changed on both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from calendar_helpers import add_user, database_refusing, run_in, sync
from exchangelib import EWSDate
from exchangelib import Task as EwsTask

from widget import settings
from widget.extensions import db
from widget.models import Task
from widget.sync import calendar_actions
from widget.sync.calendar_actions import NotStoredYet, TaskDraft

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def alice(app):
    """Alice, authorized, in Europe/Berlin."""
    return add_user(app, "alice@contoso.com", time_zone="Europe/Berlin")


def _tasks(app) -> dict[str, Task]:
    with app.app_context():
        rows = db.session.scalars(db.select(Task)).all()
        db.session.expunge_all()
        return {row.subject: row for row in rows}


def _draft(subject: str) -> TaskDraft:
    return TaskDraft(subject=subject, due=datetime.now(UTC) + timedelta(days=2), reminder_at=None, notes="")


def test_it_syncs_tasks_both_ways_and_stores_a_task_once_after_a_failed_commit(app, sandbox, alice, account):
    outlook = account("alice@contoso.com")
    due = datetime.now(BERLIN).date() + timedelta(days=3)
    call_back = EwsTask(account=outlook, folder=outlook.tasks, subject="Call Lena back", due_date=EWSDate(
        due.year, due.month, due.day))
    call_back.save()
    EwsTask(account=outlook, folder=outlook.tasks, subject="Deleted in Outlook").save()
    with run_in(app, alice) as user, database_refusing("tasks"), pytest.raises(NotStoredYet):
        calendar_actions.create_task(user, _draft("Send the contract"))
    assert _tasks(app) == {}

    first = sync(app, alice)
    stored = _tasks(app)
    assert first.created == 3 and sorted(stored) == ["Call Lena back", "Deleted in Outlook", "Send the contract"]
    assert stored["Call Lena back"].due_at.astimezone(BERLIN).date() == due

    # Outlook completes one task and deletes another; the widget completes and deletes its own.
    call_back.refresh()
    call_back.complete()
    next(iter(outlook.tasks.filter(subject="Deleted in Outlook"))).delete()
    with run_in(app, alice) as user:
        row = db.session.scalar(db.select(Task).where(Task.subject == "Send the contract"))
        calendar_actions.complete_task(user, row)
        calendar_actions.delete_task(user, row)
    run = sync(app, alice)
    assert (run.created, run.updated, run.deleted) == (0, 1, 1)
    assert [(t.subject, t.is_complete) for t in _tasks(app).values()] == [("Call Lena back", True)]
    assert [t.subject for t in outlook.tasks.all()] == ["Call Lena back"]


def test_it_keeps_the_widgets_change_of_a_task_when_the_crm_wins(app, sandbox, alice, account):
    with app.app_context():
        settings.save({"conflict_rule": "crm_wins"})
    with run_in(app, alice) as user:
        task = calendar_actions.create_task(user, _draft("Prepare the demo"))
        calendar_actions.update_task(user, task, TaskDraft(subject="Prepare the demo for Acme", due=None,
                                                           reminder_at=None, notes="", importance="High"))
        item_id = task.item_id
    in_outlook = account("alice@contoso.com").tasks.get(id=item_id)
    in_outlook.subject = "Prepare the demo (Outlook)"
    in_outlook.save(update_fields=["subject"])

    sync(app, alice)
    assert list(_tasks(app)) == ["Prepare the demo for Acme"]
    assert account("alice@contoso.com").tasks.get(id=item_id).subject == "Prepare the demo for Acme"
