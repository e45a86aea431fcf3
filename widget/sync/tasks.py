"""Task sync: the Tasks folder's changes to the widget, page by page, with the same guarantees as the calendar's.

Each page of changes is stored with its sync state in one transaction (pages.py); tasks are upserted on (user,
item id), an unchanged version is skipped, deletes are idempotent, a full pass deletes nothing until it completes.
A first pass leaves out tasks completed before the history window. When both sides changed a task, the conflict
rule decides (calendar_rows); the widget's version, when it wins, is written back to Exchange.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..exchange.port import MailboxPort
from ..exchange.problems import EditConflict, ItemGone
from ..exchange.values import ChangesPage, TaskData
from ..extensions import db
from ..local_time import user_zone
from ..models import FolderSync, Task, User
from .calendar import Progress, SyncRules
from .calendar_rows import TASKS_FOLDER, apply_task, changed_since_pulled, same_task, task_fields, widget_wins
from .email import FolderResult
from .pages import PagesRun


def _merge(row: Task, data: TaskData, port: MailboxPort, rules: SyncRules, zone: ZoneInfo, now: datetime) -> bool:
    """Bring a stored task and Exchange's changed version together; True if the row's content changed."""
    if same_task(row, data, zone):
        row.change_key = data.change_key
        return False
    if changed_since_pulled(row) and rules.may_push and widget_wins(rules.conflict_rule, row.changed_in_widget_at,
                                                                    data.last_modified):
        try:
            row.item_id, row.change_key = port.update_task(row.item_id, data.change_key,
                                                           task_fields(row, zone),
                                                           overwrite=True)
            row.changed_in_exchange_at = now
            return False
        except (EditConflict, ItemGone):
            pass  # Exchange moved on again: take its version now
    apply_task(row, data, zone, now=now)
    return True


def _store_page(user: User, state: FolderSync, page: ChangesPage, port: MailboxPort, rules: SyncRules,
                result: FolderResult, now: datetime, zone: ZoneInfo) -> None:
    """Apply one page and store its sync state, in one transaction."""
    ids = [stamp.item_id for stamp in page.changed]
    existing = {row.item_id: row for row in db.session.scalars(db.select(Task).where(
        Task.user_id == user.id, Task.item_id.in_(ids)))} if ids else {}
    to_fetch = []
    for stamp in page.changed:
        row = existing.get(stamp.item_id)
        if row is not None:
            row.seen_in_pass = state.pass_number
            if row.change_key == stamp.change_key:
                continue
        to_fetch.append(stamp.item_id)
    for item_id, data in (port.tasks(to_fetch) if to_fetch else ()):
        if data is None:
            continue  # gone since the page was read; a later page says so
        row = existing.get(item_id)
        if row is None:
            if not state.pass_complete and data.is_complete and data.completed_at is not None \
                    and data.completed_at < rules.window_start:
                continue  # done long ago: not worth showing
            row = Task(user_id=user.id, seen_in_pass=state.pass_number)
            apply_task(row, data, zone, now=now)
            db.session.add(row)
            result.created += 1
        elif _merge(row, data, port, rules, zone, now):
            result.updated += 1
    if page.deleted:
        gone = db.session.execute(db.delete(Task).where(Task.user_id == user.id, Task.item_id.in_(page.deleted)))
        result.deleted += gone.rowcount or 0
    state.sync_state = page.sync_state
    state.last_synced_at = now
    db.session.commit()


def sync_tasks(user: User, port: MailboxPort, rules: SyncRules, current: Any, *,
               progress: Progress | None = None, now: datetime | None = None) -> FolderResult:
    """Sync the user's Tasks folder until Exchange says it is up to date."""
    now = now or datetime.now(UTC)
    zone = user_zone(user, current)
    result = FolderResult(folder=TASKS_FOLDER)
    handled = 0

    def store(state: FolderSync, changes: ChangesPage) -> None:
        nonlocal handled
        _store_page(user, state, changes, port, rules, result, now, zone)
        handled += len(changes.changed) + len(changes.deleted)
        if progress:
            progress(TASKS_FOLDER, handled)

    def finish(state: FolderSync) -> None:
        stale = db.session.execute(db.delete(Task).where(Task.user_id == user.id,
                                                         Task.seen_in_pass < state.pass_number))
        result.deleted += stale.rowcount or 0

    run = PagesRun(read_page=lambda sync_state: port.changes(TASKS_FOLDER, sync_state), store_page=store,
                   finish_full_pass=finish)
    run.run(user, TASKS_FOLDER)
    result.pages, result.full_pass = run.pages, run.full_pass
    return result
