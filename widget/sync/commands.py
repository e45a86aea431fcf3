"""`flask --app widget sync EMAIL`: one sync of one account now, printing what changed."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.command("sync")
@click.argument("email")
@with_appcontext
def sync_command(email: str) -> None:
    """Sync one account now (as the scheduler would) and print what changed, folder by folder."""
    from flask import current_app

    from ..extensions import db
    from ..migrating import upgrade_database
    from ..models import User
    from .dispatch import claim, release
    from .runner import run_sync

    upgrade_database(current_app)
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account {email}: the user must authorize in the widget first")
    from datetime import UTC, datetime

    worker = "cli"
    if not claim(user.id, worker, datetime.now(UTC)):
        raise click.ClickException(f"{user.email} is being synced right now; try again when that sync ends")
    try:
        def progress(folder: str, handled: int) -> None:
            click.echo(f"  {folder}: {handled} changes so far")

        run = run_sync(user, progress=progress)
    finally:
        release(user.id, worker)
    click.echo(f"{user.email}: {run.outcome} — {user.last_sync_outcome} ({run.requests} requests)")
    if run.outcome not in ("ok", "off"):
        raise SystemExit(1)
