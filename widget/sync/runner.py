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
from . import catch_up
from .calendar import SyncRules, sync_calendar
from .calendar_rows import CALENDAR_FOLDER, TASKS_FOLDER
from .email import MailRules, sync_mail
from .labels import folder_label
from .pages import FolderResult, Progress
from .tasks import sync_tasks

log = logging.getLogger(__name__)
DEFAULT_BACK_OFF = timedelta(seconds=60)
MAILBOX_MOVE_RETRY = timedelta(minutes=5)
MAX_BACK_OFF = timedelta(hours=1)
DATABASE_PROBLEM = "The widget's database could not store this sync's changes; nothing was lost, it runs again later."
MAX_SKIPPED_LINES = 100  # items left out that one run lists
UNEXPECTED_PROBLEM = "Exchange answered with an error. Try again later, or tell your administrator."


@dataclass(frozen=True)
class Outcome:
    """How a run ended, in a word for code and a sentence for people."""

    kind: str  # ok, off, needs_password, service_refused, throttled, mailbox_moving, error
    message: str


@dataclass(frozen=True)
class SyncPlan:
    """What one sync of an account does, by the settings in force when it starts."""

    mail_folders: list[str]  # empty when email sync is off
    calendar_rules: SyncRules
    task_rules: SyncRules
    email_off_reason: str | None

    @classmethod
    def from_settings(cls, current: settings.WidgetSettings, now: datetime) -> SyncPlan:
        """The plan of the administrator's settings at `now`."""
        off = current.email_sync_off_reason
        return cls([] if off else list(current.sync_folders),
                   SyncRules.from_settings(current, current.sync_calendar, now),
                   SyncRules.from_settings(current, current.sync_tasks, now), off)

    @property
    def folders(self) -> list[str]:
        """Every folder the sync reads, in order."""
        return self.mail_folders + [folder for folder, rules in ((CALENDAR_FOLDER, self.calendar_rules),
                                                                 (TASKS_FOLDER, self.task_rules)) if rules.pulls]


def _start_run(user: User, folders: list[str], now: datetime) -> SyncRun:
    """The run's row, committed; a run of this account still marked running was cut off (its process died): only the
    holder of the account's claim syncs it."""
    db.session.execute(update(SyncRun).where(SyncRun.user_id == user.id, SyncRun.outcome == "running").values(
        outcome="interrupted", finished_at=now, progress=None,
        error="The sync stopped before it finished; the next sync went on from the last page it stored."))
    run = SyncRun(user_id=user.id, started_at=now, folders=folders)
    db.session.add(run)
    db.session.commit()
    return run


def _run_plan(user: User, plan: SyncPlan, port: MailboxPort, current: settings.WidgetSettings, report: Progress,
              now: datetime) -> list[FolderResult]:
    """Every folder of the plan, one after another."""
    results: list[FolderResult] = []
    if plan.mail_folders:
        upto = catch_up.latest_addition()  # the addresses known from here on are in the rules the folders use
        rules = MailRules.from_settings(current)
        mail = sync_mail(user, port, rules, plan.mail_folders, progress=report).folders
        catch_up.catch_up(user, port, mail, rules, upto=upto, now=now)
        results += mail
    if plan.calendar_rules.pulls:
        results.append(sync_calendar(user, port, plan.calendar_rules, progress=report, now=now))
    if plan.task_rules.pulls:
        results.append(sync_tasks(user, port, plan.task_rules, current, progress=report, now=now))
    return results


def _back_off(user: User, now: datetime) -> datetime:
    user.sync_failures = (user.sync_failures or 0) + 1
    return now + min(DEFAULT_BACK_OFF * 2 ** (user.sync_failures - 1), MAX_BACK_OFF)


def _after_problem(user: User, problem: ExchangeProblem, now: datetime) -> tuple[Outcome, datetime | None]:
    """What a mailbox problem means for the account: the run's outcome and when it is due next (None: not until
    someone gives a new password)."""
    if problem.refused_credentials or problem.kind == "service_refused":
        # Never retried with the same password: the account (or, for the service account's password, every
        # impersonated account) leaves the schedule until someone gives a new one.
        user.note_refusal(problem.refused_credentials)
        if user.has_password:
            return Outcome("needs_password", problem.message), None
        return Outcome("service_refused", service_account.REFUSED_MESSAGE), None
    if problem.kind == "throttled":
        wait = timedelta(seconds=problem.back_off) if problem.back_off else DEFAULT_BACK_OFF
        return Outcome("throttled", "Exchange asked the widget to wait; the sync continues later."), now + wait
    if problem.kind == "mailbox_moving":
        return (Outcome("mailbox_moving", "Your mailbox is being moved by Exchange; the sync continues later."),
                now + MAILBOX_MOVE_RETRY)
    return Outcome("error", problem.message), _back_off(user, now)


def _record(run: SyncRun, user: User, outcome: Outcome, next_due: datetime | None, port: MailboxPort | None) -> None:
    """The run's end, and the account's next due time, committed."""
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


def run_sync(user: User, *, progress: Progress | None = None, now: datetime | None = None) -> SyncRun:
    """Sync one account now: plan it from the settings, run it folder by folder, record how it ended and when the
    account is due next. Never raises for Exchange."""
    now = now or datetime.now(UTC)
    current = settings.load()
    plan = SyncPlan.from_settings(current, now)
    run = _start_run(user, list(current.sync_folders), now)
    started = time.monotonic()
    port: MailboxPort | None = None
    next_due: datetime | None = now + timedelta(minutes=current.sync_interval_minutes)
    try:
        run.folders = plan.folders
        if not run.folders:
            outcome = Outcome("off", plan.email_off_reason or "Sync is turned off by your administrator.")
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

            results = _run_plan(user, plan, port, current, report, now)
            run.created, run.updated, run.deleted = (sum(r.created for r in results), sum(r.updated for r in results),
                                                     sum(r.deleted for r in results))
            summary = f"{run.created} new, {run.updated} changed, {run.deleted} removed"
            run.skipped = [line for result in results for line in result.skipped][:MAX_SKIPPED_LINES] or None
            if run.skipped:
                summary += f", {len(run.skipped)} left out (see the sync history)"
            # Email may be off (another integration owns it) while the calendar and tasks still sync: say so.
            outcome = Outcome("ok", f"{summary}. {plan.email_off_reason}" if plan.email_off_reason else summary)
            user.sync_failures = 0
            if plan.mail_folders and catch_up.pending(user):
                next_due = now  # the directory learnt more addresses during this run: catch up on them next
    except ExchangeProblem as problem:
        db.session.rollback()
        outcome, next_due = _after_problem(user, problem, now)
    except Exception as error:  # every other failure is transient until proven otherwise
        # Rolled back first: after a failed flush even reading `user` needs a usable session.
        db.session.rollback()
        log.warning("sync of account %s failed: %s", user.id, type(error).__name__, exc_info=True)
        next_due = _back_off(user, now)
        outcome = Outcome("error", DATABASE_PROBLEM if isinstance(error, SQLAlchemyError) else UNEXPECTED_PROBLEM)
    _record(run, user, outcome, next_due, port)
    return run
