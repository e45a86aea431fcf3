"""Task sync: the Tasks folder's changes to the widget, page by page, with the same guarantees as the calendar's.

Each page of changes is stored with its sync state in one transaction (pages.py); tasks are upserted on (user,
item id), an unchanged version is skipped, deletes are idempotent, a full pass deletes nothing until it completes.
A first pass leaves out tasks completed before the history window. When both sides changed a task, the conflict
rule decides (calendar_rows); the widget's version, when it wins, is written back to Exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..exchange.port import MailboxPort
from ..exchange.problems import EditConflict, ItemGone
from ..exchange.values import ChangesPage, TaskData
from ..extensions import db
from ..local_time import user_zone
from ..models import FolderSync, Task, User
from .calendar import SyncRules
from .calendar_rows import TASKS_FOLDER, apply_task, changed_since_pulled, same_task, task_fields, widget_wins
from .fitting import unstorable
from .pages import FolderResult, Progress, sync_folder


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


def _apply_page(user: User, state: FolderSync, page: ChangesPage, port: MailboxPort, rules: SyncRules,
                result: FolderResult, now: datetime, zone: ZoneInfo) -> None:
    """Apply one page's changes to the stored tasks (the pipeline stores the page's state with them)."""
    ids = [stamp.item_id for stamp in page.changed]
    existing = {row.item_id: row for row in db.session.scalars(db.select(Task).where(
        Task.user_id == user.id, Task.item_id.in_(ids)))} if ids else {}
    to_fetch = []
    for stamp in page.changed:
        why = unstorable(Task, stamp.item_id, stamp.change_key)
        if why:
            result.skip("a task", why)
            continue
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


@dataclass
class TaskFolderPass:
    """The Tasks folder's part of the page pipeline (pages.py)."""

    user: User
    port: MailboxPort
    rules: SyncRules
    now: datetime
    zone: ZoneInfo
    result: FolderResult
    folder: str = TASKS_FOLDER

    def read_page(self, sync_state: str | None) -> ChangesPage:
        """The Tasks folder's next page of changes."""
        return self.port.changes(TASKS_FOLDER, sync_state)

    def apply_page(self, state: FolderSync, page: ChangesPage) -> int:
        """Store the page's tasks."""
        _apply_page(self.user, state, page, self.port, self.rules, self.result, self.now, self.zone)
        return len(page.changed) + len(page.deleted)

    def finish_full_pass(self, state: FolderSync) -> None:
        """Delete the tasks the completed full pass did not see."""
        stale = db.session.execute(db.delete(Task).where(Task.user_id == self.user.id,
                                                         Task.seen_in_pass < state.pass_number))
        self.result.deleted += stale.rowcount or 0

    def after_pages(self, state: FolderSync, synced_before: datetime | None) -> None:
        """Nothing more for tasks."""


def sync_tasks(user: User, port: MailboxPort, rules: SyncRules, current: Any, *,
               progress: Progress | None = None, now: datetime | None = None) -> FolderResult:
    """Sync the user's Tasks folder until Exchange says it is up to date."""
    now = now or datetime.now(UTC)
    folder_pass = TaskFolderPass(user, port, rules, now, user_zone(user, current), FolderResult(folder=TASKS_FOLDER))
    return sync_folder(user, folder_pass, now=now, progress=progress)
