"""Small exchangelib helpers for tests: one SyncFolderItems page at a time, as the widget's sync will drive it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from exchangelib import Account, Message
from exchangelib.fields import FieldPath
from exchangelib.services import SyncFolderItems

from widget.sandbox import Store
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox

MESSAGE_FIELDS = ("subject", "datetime_received", "sender", "is_read")


@dataclass
class SyncPage:
    """One SyncFolderItems reply: its changes as (kind, item or id), its new state, and whether it was the last."""

    changes: list[tuple[str, Any]]
    sync_state: str
    done: bool

    def kinds(self) -> dict[str, int]:
        """How many changes of each kind the page holds."""
        counts: dict[str, int] = {}
        for kind, _ in self.changes:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def sync_page(
    account: Account,
    folder: Any,
    sync_state: str | None = None,
    max_changes: int = 512,
    fields: tuple[str, ...] = MESSAGE_FIELDS,
) -> SyncPage:
    """Ask for one page of changes of `folder` since `sync_state`."""
    service = SyncFolderItems(account=account)
    additional = {FieldPath(field=Message.get_field_by_fieldname(name)) for name in fields}
    changes = list(
        service.call(
            folder=folder,
            shape="IdOnly",
            additional_fields=additional,
            sync_state=sync_state,
            ignore=None,
            max_changes_returned=max_changes,
            sync_scope=None,
        )
    )
    return SyncPage(changes=changes, sync_state=service.sync_state, done=service.includes_last_item_in_range)


def fill_inbox(store: Store, mailbox: str, count: int, *, start: datetime | None = None) -> None:
    """Deliver `count` messages from outside into a mailbox, a minute apart."""
    start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for number in range(count):
        when = start + timedelta(minutes=number)
        props = {
            "Subject": f"Message {number}",
            "ToRecipients": [Mailbox(mailbox)],
            "Body": Body("Text", f"Body of message {number}"),
        }
        message_defaults(props, Mailbox(f"sender{number % 7}@customer.example", f"Sender {number % 7}"), when)
        deliver_message(store, props, when)
