"""How the sync of one folder goes, whatever the folder holds (mail, calendar items, tasks): the one page pipeline.

Ask the mailbox for the next page of changes since the stored sync state; let the folder's own code apply the page;
store the page's new state with it in ONE transaction; go on until the mailbox says the folder is up to date. The
state stored is always that of the last stored page, so a crash between pages loses nothing and duplicates nothing.

A full pass (the first sync of a folder, or after the server declared a sync state invalid) gets a new pass number:
the folder's code marks every item it sees with it, and only when the pass completes are the items that it did not
see deleted — an interrupted full pass deletes nothing.

A run is bounded: a server that never says "up to date", or keeps declaring the state it just gave invalid, would
otherwise keep one account's sync (and a worker) busy for ever. Past the bound the run stops with what it stored so
far and says so in the sync history; the next run goes on from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from ..exchange.problems import ExchangeProblem, SyncStateInvalid
from ..extensions import db
from ..models import FolderSync, User

Progress = Callable[[str, int], None]  # (folder, changes handled so far) — for "Sync now" progress
MAX_PAGES = 2000  # pages of one folder in one run: a million changes of mail at 512 a page
MAX_SECONDS = 1800.0  # one folder's pages in one run
MAX_RESETS = 2  # full passes one run starts because the server declared its state invalid


class Page(Protocol):
    """What every folder's page of changes says: its sync state and whether it was the last one."""

    sync_state: str
    done: bool


PageT = TypeVar("PageT", bound=Page)


@dataclass
class FolderResult:
    """What one folder's sync changed."""

    folder: str
    created: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0
    full_pass: bool = False
    fresh_pass: bool = False  # a full pass began in this run (it saw every address the directory knew then)
    skipped: list[str] = field(default_factory=list)  # items left out, each with why, for the sync history

    def skip(self, what: str, why: str) -> None:
        """Leave one item out of the folder's sync, saying why (the rest of the folder syncs)."""
        from .labels import folder_label

        self.skipped.append(f"{folder_label(self.folder)}: {what[:100]} was left out: {why}.")


class FolderPass(Protocol[PageT]):
    """A folder's own part of the pipeline: what it reads, how it applies a page, what a completed pass removes."""

    folder: str
    result: FolderResult

    def read_page(self, sync_state: str | None) -> PageT:
        """The page after `sync_state` (None: from the start)."""
        ...

    def apply_page(self, state: FolderSync, page: PageT) -> int:
        """Apply a page's changes to the stored items (not committed); how many changes it handled."""
        ...

    def finish_full_pass(self, state: FolderSync) -> None:
        """Delete what a completed full pass did not see (not committed)."""
        ...

    def after_pages(self, state: FolderSync, synced_before: datetime | None) -> None:
        """Once the folder is up to date (e.g. fetch the newest bodies); `synced_before` is when the folder was
        last synced before this run. Commits what it does."""
        ...


@dataclass
class Bounds:
    """How far one run of one folder may go."""

    max_pages: int = MAX_PAGES
    max_seconds: float = MAX_SECONDS
    max_resets: int = MAX_RESETS

    @classmethod
    def of_app(cls) -> Bounds:
        """The bounds of this deployment (WIDGET_SYNC_MAX_PAGES in the app's config, for tests and the bench)."""
        from flask import current_app

        return cls(max_pages=int(current_app.config.get("WIDGET_SYNC_MAX_PAGES", MAX_PAGES)))


def folder_state(user: User, folder: str) -> FolderSync:
    """Where the sync of a folder of the user's mailbox stands (created, not committed, on first use)."""
    state = db.session.scalar(db.select(FolderSync).where(FolderSync.user_id == user.id, FolderSync.folder == folder))
    if state is None:
        state = FolderSync(user_id=user.id, folder=folder, pass_number=0, pass_complete=False)
        db.session.add(state)
        db.session.flush()
    return state


def current_pass(user: User, folder: str) -> int:
    """The folder's pass number now: what an item stored outside the sync (by a user's action) is marked with, so that
    a full pass under way does not delete it at its end."""
    return db.session.scalar(db.select(FolderSync.pass_number).where(
        FolderSync.user_id == user.id, FolderSync.folder == folder)) or 0


def _start_full_pass(state: FolderSync) -> None:
    state.sync_state = None
    state.pass_number += 1
    state.pass_complete = False
    db.session.commit()


class Runaway(ExchangeProblem):
    """A folder's run went past its bounds; what it stored so far stays."""

    def __init__(self, folder_label: str, why: str):
        super().__init__("runaway", f"{folder_label}: {why} The changes stored so far are kept; the next sync goes on "
                                    "from there.")


def sync_folder(user: User, folder_pass: FolderPass[PageT], *, now: datetime, progress: Progress | None = None,
                bounds: Bounds | None = None) -> FolderResult:
    """Sync one folder until the mailbox says it is up to date: each page applied and stored with its state in one
    transaction. Raises Runaway past the bounds."""
    from .labels import folder_label

    bounds = bounds or Bounds.of_app()
    folder, result = folder_pass.folder, folder_pass.result
    state = folder_state(user, folder)
    if state.sync_state is None:
        _start_full_pass(state)
        result.fresh_pass = True
    result.full_pass = not state.pass_complete
    synced_before = state.last_synced_at
    started, resets, handled = time.monotonic(), 0, 0
    while True:
        if result.pages >= bounds.max_pages or time.monotonic() - started > bounds.max_seconds:
            raise Runaway(folder_label(folder), f"Exchange kept sending changes ({result.pages} pages in this sync) "
                                                "without saying the folder is up to date.")
        try:
            page = folder_pass.read_page(state.sync_state)
        except SyncStateInvalid:
            # The server no longer knows our state: a full pass that deletes nothing until it completes.
            resets += 1
            if resets > bounds.max_resets:
                raise Runaway(folder_label(folder), "Exchange declared the folder's sync state invalid again and "
                                                    "again.") from None
            _start_full_pass(state)
            result.full_pass = result.fresh_pass = True
            continue
        result.pages += 1
        handled += folder_pass.apply_page(state, page)
        state.sync_state = page.sync_state
        state.last_synced_at = now
        db.session.commit()
        if progress:
            progress(folder, handled)
        if page.done:
            break
    if not state.pass_complete:
        folder_pass.finish_full_pass(state)
        state.pass_complete = True
        db.session.commit()
    folder_pass.after_pages(state, synced_before)
    return result
