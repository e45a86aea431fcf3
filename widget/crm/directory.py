"""The CRM directory: records of Contacts, Leads, Accounts and Deals, known by the CRM's own record id.

A record has a module, the CRM's id, a name, its email addresses (lower-cased, deduplicated, validated) and its
relations by the CRM's ids: a contact points to its account (`account_crm_id`), a deal to its account and its
contact (`account_crm_id`, `contact_crm_id`). Leads and accounts point to nothing. A relation may name a
record that has not arrived yet: relations are kept by id, not by foreign key.

Every function here works in the caller's transaction: nothing commits, so that an import or an API batch is
applied whole or not at all.

**Past mail of new addresses.** The sync engine stores only mail that matches a record (the privacy default,
unless the administrator stores all mail): mail from an address the directory did not know was seen by the sync
and left in Exchange. So when a change ADDS addresses that no record had before, `upsert_records` records them
for the sync room (widget/sync/catch_up.py): each mailbox's next sync searches its folders for those addresses
within the history window, once for a whole burst of changes. A contact imported today thus shows last month's
mail after the next sync. Changes that only remove addresses, rename records or change relations need nothing
(matching reads relations when mail is shown), nor do addresses that the sync never stores anyway (excluded
addresses and domains), nor any change while all mail is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func

from ..addresses import normalise_address
from ..extensions import db
from ..models import CRM_MODULES, CrmAddress, CrmRecord

MODULES = CRM_MODULES
# Which relations each module has: a contact belongs to an account; a deal to an account and a contact.
RELATIONS: dict[str, tuple[str, ...]] = {
    "Contacts": ("account",),
    "Leads": (),
    "Accounts": (),
    "Deals": ("account", "contact"),
}
MAX_ID = 100  # CrmRecord.crm_id and the relation columns
MAX_NAME = 300  # CrmRecord.name
MAX_ADDRESSES = 50  # per record: a CRM record has a handful; more is a mistake in the data
_CHUNK = 500  # ids per IN (...) list: well under every database's limit on bound parameters

# C0 and C1 control characters (after whitespace is folded): no CRM id or name holds one, and PostgreSQL refuses NUL.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class RecordError(ValueError):
    """A value that cannot be stored: which field (and which of its values), and what is wrong with it."""

    def __init__(self, field: str, message: str, index: int | None = None):
        super().__init__(message)
        self.field = field
        self.index = index
        self.message = message


def _crm_id(value: Any, field_name: str, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError(field_name, "the record id is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(field_name, "must be a text or a whole number")
    text = str(value).strip()
    if _CONTROL.search(text):
        raise RecordError(field_name, "must not hold control characters (such as NUL)")
    if len(text) > MAX_ID:
        raise RecordError(field_name, f"{text[:20]!r}... is longer than {MAX_ID} characters")
    return text


@dataclass(frozen=True)
class RecordInput:
    """One record as a caller gives it; constructing one validates and normalises it (RecordError if wrong).

    `emails` become lower-cased and deduplicated in their order; blank ones are dropped. A relation that the
    module does not have is an error, so that a mistake in a caller's data is said, not silently dropped.
    """

    module: str
    crm_id: str
    name: str = ""
    emails: tuple[str, ...] = ()
    account_crm_id: str | None = None
    contact_crm_id: str | None = None

    def __post_init__(self) -> None:
        if self.module not in MODULES:
            raise RecordError("module", f"{self.module!r} is not one of {', '.join(MODULES)}")
        set_ = object.__setattr__
        set_(self, "crm_id", _crm_id(self.crm_id, "id", required=True))
        name = " ".join(str(self.name or "").split())
        if _CONTROL.search(name):
            raise RecordError("name", "must not hold control characters (such as NUL)")
        if len(name) > MAX_NAME:
            raise RecordError("name", f"is longer than {MAX_NAME} characters")
        set_(self, "name", name)
        addresses: list[str] = []
        for index, raw in enumerate(self.emails):
            if not isinstance(raw, str):
                raise RecordError("emails", "must be a text (an e-mail address)", index)
            if not raw.strip():
                continue
            try:
                address = normalise_address(raw)
            except ValueError as error:
                raise RecordError("emails", str(error), index) from None
            if address not in addresses:
                addresses.append(address)
        if len(addresses) > MAX_ADDRESSES:
            raise RecordError("emails", f"a record has at most {MAX_ADDRESSES} addresses, not {len(addresses)}")
        set_(self, "emails", tuple(addresses))
        for relation in ("account", "contact"):
            attribute = f"{relation}_crm_id"
            value = _crm_id(getattr(self, attribute), f"{relation}_id", required=False)
            if value is not None and relation not in RELATIONS[self.module]:
                raise RecordError(f"{relation}_id", f"{self.module} records have no {relation}")
            set_(self, attribute, value)

    @property
    def key(self) -> tuple[str, str]:
        """(module, CRM id): what identifies a record."""
        return self.module, self.crm_id


@dataclass
class UpsertResult:
    """What an upsert changed, and whether it asked for past mail to be re-linked."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    new_addresses: int = 0  # addresses that no record had before
    relink: bool = False  # every account will make a full pass (see the module's docstring)
    created_keys: list[tuple[str, str]] = field(default_factory=list)


T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def find_records(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CrmRecord]:
    """The stored records among `keys`, by (module, CRM id)."""
    by_module: dict[str, list[str]] = {}
    for module, crm_id in keys:
        by_module.setdefault(module, []).append(crm_id)
    found = {}
    for module, ids in by_module.items():
        for chunk in _chunks(sorted(set(ids))):
            for record in db.session.scalars(db.select(CrmRecord).where(CrmRecord.module == module,
                                                                        CrmRecord.crm_id.in_(chunk))):
                found[(record.module, record.crm_id)] = record
    return found


def addresses_of(record_ids: Sequence[int]) -> dict[int, set[str]]:
    """The stored addresses of records, by record id."""
    found: dict[int, set[str]] = {record_id: set() for record_id in record_ids}
    for chunk in _chunks(list(record_ids)):
        for record_id, address in db.session.execute(
                db.select(CrmAddress.record_id, CrmAddress.address).where(CrmAddress.record_id.in_(chunk))):
            found[record_id].add(address)
    return found


def known_addresses(addresses: Iterable[str]) -> set[str]:
    """Which of `addresses` some record of the directory has."""
    wanted = sorted(set(addresses))
    known: set[str] = set()
    for chunk in _chunks(wanted):
        known.update(db.session.scalars(db.select(CrmAddress.address).where(CrmAddress.address.in_(chunk))
                                        .distinct()))
    return known


def upsert_records(rows: Sequence[RecordInput], *, now: datetime | None = None) -> UpsertResult:
    """Create or update records by (module, CRM id); each record's addresses become exactly the given ones.

    A record whose name, relations and addresses are as stored is left alone (counted unchanged). Works in the
    caller's transaction. Two rows with the same key are a caller's mistake (ValueError). When the change adds
    addresses the directory did not have, past mail is re-linked (see the module's docstring).
    """
    now = now or datetime.now(UTC)
    result = UpsertResult()
    keys = [row.key for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("the same record is given twice")
    existing = find_records(keys)
    stored = addresses_of([record.id for record in existing.values()])
    before = known_addresses(address for row in rows for address in row.emails)
    new_records: list[tuple[CrmRecord, RecordInput]] = []
    for row in rows:
        record = existing.get(row.key)
        if record is None:
            record = CrmRecord(module=row.module, crm_id=row.crm_id, name=row.name, account_crm_id=row.account_crm_id,
                               contact_crm_id=row.contact_crm_id, updated_at=now)
            db.session.add(record)
            new_records.append((record, row))
            result.created += 1
            result.created_keys.append(row.key)
            continue
        old, new = stored[record.id], set(row.emails)
        if (record.name, record.account_crm_id, record.contact_crm_id, old) == (
                row.name, row.account_crm_id, row.contact_crm_id, new):
            result.unchanged += 1
            continue
        record.name, record.account_crm_id, record.contact_crm_id = row.name, row.account_crm_id, row.contact_crm_id
        record.updated_at = now
        if old - new:
            db.session.execute(db.delete(CrmAddress).where(CrmAddress.record_id == record.id,
                                                           CrmAddress.address.in_(sorted(old - new))))
        db.session.add_all(CrmAddress(record_id=record.id, address=address) for address in row.emails
                           if address not in old)
        result.updated += 1
    if new_records:
        db.session.flush()  # the new records' ids
        db.session.add_all(CrmAddress(record_id=record.id, address=address) for record, row in new_records
                           for address in row.emails)
    db.session.flush()
    added = {address for row in rows for address in row.emails} - before
    result.new_addresses = len(added)
    if added and _relink_needed(added):
        from ..sync.catch_up import record_additions

        record_additions(added, now or datetime.now(UTC))
        result.relink = True
    return result


def delete_records(keys: Iterable[tuple[str, str]]) -> int:
    """Delete records by (module, CRM id), with their addresses; unknown keys are ignored. Returns how many went.

    Works in the caller's transaction. Relations pointing to a deleted record stay (they are ids): a record
    that comes back under the same id is linked again.
    """
    records = list(find_records(list(keys)).values())
    ids = [record.id for record in records]
    for chunk in _chunks(ids):
        db.session.execute(db.delete(CrmAddress).where(CrmAddress.record_id.in_(chunk)))
        db.session.execute(db.delete(CrmRecord).where(CrmRecord.id.in_(chunk)))
    db.session.flush()
    return len(ids)


def _relink_needed(added: set[str]) -> bool:
    """Whether new addresses can bring mail the sync left in Exchange (not if it stores all mail, or never this)."""
    from .. import settings

    current = settings.load()
    if current.store_unmatched_email:
        return False
    excluded, domains = set(current.excluded_addresses), set(current.excluded_domains)
    return any(address not in excluded and address.rpartition("@")[2] not in domains for address in added)


def counts_by_module() -> dict[str, int]:
    """How many records each module holds (every module listed)."""
    counts = dict.fromkeys(MODULES, 0)
    for module, count in db.session.execute(db.select(CrmRecord.module, func.count(CrmRecord.id))
                                            .group_by(CrmRecord.module)):
        counts[module] = count
    return counts
