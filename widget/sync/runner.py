"""One sync of one account, as the scheduler and `flask --app widget sync EMAIL` run it: the right mailbox
connection, the run recorded, and every failure turned into the account's next state.

- Exchange refuses the stored password (401): the account "needs password" at once and leaves the schedule;
  it is never retried with that password (a retried wrong password locks people out).
- Exchange is busy (ErrorServerBusy, HTTP 503): due again after the server's back-off, never a sleep here.
- The mailbox is being moved: due again in a few minutes; not an authentication problem.
- Anything else transient: capped exponential back-off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from .. import service_account, settings
from ..exchange.factory import mailbox_for
from ..exchange.port import MailboxPort
from ..exchange.problems import ExchangeProblem
from ..extensions import db
from ..models import SyncRun, User
from .calendar import SyncRules, sync_calendar
from .calendar_rows import CALENDAR_FOLDER, TASKS_FOLDER
from .email import FolderResult, MailRules, Progress, sync_mail
from .labels import folder_label
from .tasks import sync_tasks

log = logging.getLogger(__name__)
DEFAULT_BACK_OFF = timedelta(seconds=60)
MAILBOX_MOVE_RETRY = timedelta(minutes=5)
MAX_BACK_OFF = timedelta(hours=1)
DATABASE_PROBLEM = "The widget's database could not store this sync's changes; nothing was lost, it runs again later."
UNEXPECTED_PROBLEM = "Exchange answered with an error. Try again later, or tell your administrator."


@dataclass(frozen=True)
class Outcome:
    """How a run ended, in a word for code and a sentence for people."""

    kind: str  # ok, off, needs_password, service_refused, throttled, mailbox_moving, error
    message: str


def run_sync(user: User, *, progress: Progress | None = None, now: datetime | None = None) -> SyncRun:
    """Sync one account now; record the run and set when the account is due next. Never raises for Exchange."""
    now = now or datetime.now(UTC)
    current = settings.load()
    folders = list(current.sync_folders)
    # Only the holder of the account's claim syncs it: a run still marked running was cut off (its process died).
    db.session.execute(update(SyncRun).where(SyncRun.user_id == user.id, SyncRun.outcome == "running").values(
        outcome="interrupted", finished_at=now, progress=None,
        error="The sync stopped before it finished; the next sync went on from the last page it stored."))
    run = SyncRun(user_id=user.id, started_at=now, folders=folders)
    db.session.add(run)
    db.session.commit()
    started = time.monotonic()
    port: MailboxPort | None = None
    outcome: Outcome
    next_due: datetime | None = now + timedelta(minutes=current.sync_interval_minutes)
    try:
        calendar_rules = SyncRules.from_settings(current, current.sync_calendar, now)
        task_rules = SyncRules.from_settings(current, current.sync_tasks, now)
        run.folders = ([] if current.email_sync_off_reason else folders) + \
            [folder for folder, rules in ((CALENDAR_FOLDER, calendar_rules), (TASKS_FOLDER, task_rules)) if rules.pulls]
        if not run.folders:
            outcome = Outcome("off", current.email_sync_off_reason or "Sync is turned off by your administrator.")
        else:
            port = mailbox_for(user, current)

            def report(folder: str, handled: int) -> None:
                run.progress = f"{folder_label(folder)}: {handled} changes"
                if user.sync_claimed_at is not None:
                    # The claim's heartbeat, on the run's own clock: a claim not renewed for CLAIM_TIMEOUT is a dead
                    # worker's, which another may take over.
                    user.sync_claimed_at = now + timedelta(seconds=time.monotonic() - started)
                db.session.commit()
                if progress:
                    progress(folder, handled)

            results: list[FolderResult] = []
            if not current.email_sync_off_reason:
                results += sync_mail(user, port, MailRules.from_settings(current), folders, progress=report).folders
            if calendar_rules.pulls:
                results.append(sync_calendar(user, port, calendar_rules, progress=report, now=now))
            if task_rules.pulls:
                results.append(sync_tasks(user, port, task_rules, current, progress=report, now=now))
            run.created, run.updated, run.deleted = (sum(r.created for r in results), sum(r.updated for r in results),
                                                     sum(r.deleted for r in results))
            summary = f"{run.created} new, {run.updated} changed, {run.deleted} removed"
            # Email may be off (another integration owns it) while the calendar and tasks still sync: say so.
            outcome = Outcome("ok", f"{summary}. {current.email_sync_off_reason}" if current.email_sync_off_reason
                              else summary)
            user.sync_failures = 0
    except ExchangeProblem as problem:
        db.session.rollback()
        if problem.refused_credentials or problem.kind == "service_refused":
            # Never retried with the same password: the account (or, for the service account's password, every
            # impersonated account) leaves the schedule until someone gives a new one.
            user.note_refusal(problem.refused_credentials)
            outcome = (Outcome("needs_password", problem.message) if user.has_password
                       else Outcome("service_refused", service_account.REFUSED_MESSAGE))
            next_due = None
        elif problem.kind == "throttled":
            next_due = now + (timedelta(seconds=problem.back_off) if problem.back_off else DEFAULT_BACK_OFF)
            outcome = Outcome("throttled", "Exchange asked the widget to wait; the sync continues later.")
        elif problem.kind == "mailbox_moving":
            next_due = now + MAILBOX_MOVE_RETRY
            outcome = Outcome("mailbox_moving", "Your mailbox is being moved by Exchange; the sync continues later.")
        else:
            user.sync_failures = (user.sync_failures or 0) + 1
            next_due = now + min(DEFAULT_BACK_OFF * 2 ** (user.sync_failures - 1), MAX_BACK_OFF)
            outcome = Outcome("error", problem.message)
    except Exception as error:  # every other failure is transient until proven otherwise
        # Rolled back first: after a failed flush even reading `user` needs a usable session.
        db.session.rollback()
        log.warning("sync of account %s failed: %s", user.id, type(error).__name__, exc_info=True)
        user.sync_failures = (user.sync_failures or 0) + 1
        next_due = now + min(DEFAULT_BACK_OFF * 2 ** (user.sync_failures - 1), MAX_BACK_OFF)
        outcome = Outcome("error", DATABASE_PROBLEM if isinstance(error, SQLAlchemyError) else UNEXPECTED_PROBLEM)
    finished = datetime.now(UTC)
    run.finished_at = finished
    run.progress = None
    run.outcome = outcome.kind
    run.error = None if outcome.kind in ("ok", "off") else outcome.message
    run.requests = port.requests if port else 0
    user.sync_due_at = next_due
    user.last_sync_at = finished
    user.last_sync_outcome = outcome.message
    db.session.commit()
    return run
