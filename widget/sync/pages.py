"""How the sync of one folder goes, whatever the folder holds (mail, calendar items, tasks).

Ask Exchange for the next page of changes since the stored sync state; let the folder's own code store the page and
its new state in ONE transaction; go on until Exchange says the folder is up to date. The state stored is always
that of the last stored page, so a crash between pages loses nothing and duplicates nothing.

A full pass (the first sync of a folder, or after Exchange declared a sync state invalid) gets a new pass number:
the folder's code marks every item it sees with it, and only when the pass completes are the items that it did not
see deleted — an interrupted full pass deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..exchange.problems import SyncStateInvalid
from ..extensions import db
from ..models import FolderSync, User


class Page(Protocol):
    """What every folder's page of changes says: its sync state and whether it was the last one."""

    sync_state: str
    done: bool


PageT = TypeVar("PageT", bound=Page)


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


@dataclass
class PagesRun(Generic[PageT]):
    """One run over a folder: how it reads a page, stores one, and ends a full pass."""

    read_page: Callable[[str | None], PageT]  # the page after a sync state (None: from the start)
    store_page: Callable[[FolderSync, PageT], None]  # stores the page AND state.sync_state = page.sync_state, commits
    finish_full_pass: Callable[[FolderSync], None]  # deletes what the pass did not see (without committing)
    pages: int = 0
    full_pass: bool = False

    def run(self, user: User, folder: str) -> None:
        """Sync the folder until Exchange says it is up to date."""
        state = folder_state(user, folder)
        if state.sync_state is None:
            _start_full_pass(state)
        self.full_pass = not state.pass_complete
        while True:
            try:
                page = self.read_page(state.sync_state)
            except SyncStateInvalid:
                # Exchange no longer knows our state: start a full pass that deletes nothing until it completes.
                _start_full_pass(state)
                self.full_pass = True
                continue
            self.pages += 1
            self.store_page(state, page)
            if page.done:
                break
        if not state.pass_complete:
            self.finish_full_pass(state)
            state.pass_complete = True
            db.session.commit()
