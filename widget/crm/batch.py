"""A batch of changes to the directory as the CRM's webhooks send it to `POST /api/crm/records`:

    {"upsert": [{"module": "Contacts", "id": "4876876000000331001", "name": "Lena Fischer",
                 "emails": ["lena.fischer@acme.example"], "account_id": "4876876000000330011"}],
     "delete": [{"module": "Leads", "id": "4876876000000412001"}]}

Each upsert gives the whole record: a field left out is empty afterwards (no name, no addresses, no
relation). `account_id` belongs to Contacts and Deals, `contact_id` to Deals. Ids are texts (whole numbers
are accepted and kept as their digits). The whole batch is checked before anything is applied; every
problem is named by where it is, e.g. `upsert[3].emails[0]: 'x' is not an e-mail address`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .directory import MODULES, RecordError, RecordInput

MAX_RECORDS = 1000  # upserts and deletes together, per request
MAX_ERRORS = 50  # problems listed in one answer
UPSERT_FIELDS = ("module", "id", "name", "emails", "account_id", "contact_id")
DELETE_FIELDS = ("module", "id")


class BatchError(ValueError):
    """A batch that is refused as a whole: the problems, and the HTTP status that says so (400, or 413)."""

    def __init__(self, errors: list[str], status: int = 400):
        super().__init__(errors[0])
        self.errors = errors
        self.status = status


@dataclass
class Batch:
    """A checked batch: records to upsert and (module, id) keys to delete."""

    upserts: list[RecordInput] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)


def json_type(value: Any) -> str:
    """A JSON value's type in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _module(item: dict[str, Any], where: str) -> str:
    if "module" not in item:
        raise ValueError(f"{where}.module: missing (one of {', '.join(MODULES)})")
    module = item["module"]
    if not isinstance(module, str) or module not in MODULES:
        shown = repr(module) if isinstance(module, str) else json_type(module)
        raise ValueError(f"{where}.module: {shown} is not one of {', '.join(MODULES)}")
    return module


def _id(item: dict[str, Any], where: str) -> Any:
    value = item.get("id")
    if "id" not in item or value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}.id: missing (the CRM's id of the record)")
    return value


def _unknown(item: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    for key in item:
        if key not in allowed:
            raise ValueError(f"{where}: unknown field {key!r} (the fields are {', '.join(allowed)})")


def _upsert(item: Any, where: str) -> RecordInput:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object, not {json_type(item)}")
    _unknown(item, where, UPSERT_FIELDS)
    module, crm_id = _module(item, where), _id(item, where)
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{where}.name: must be a text, not {json_type(name)}")
    emails = item.get("emails")
    if emails is None:
        emails = []
    elif not isinstance(emails, list):
        raise ValueError(f"{where}.emails: must be a list of addresses, not {json_type(emails)}")
    try:
        return RecordInput(module=module, crm_id=crm_id, name=name or "", emails=tuple(emails),
                           account_crm_id=item.get("account_id"), contact_crm_id=item.get("contact_id"))
    except RecordError as error:
        path = f"{where}.{error.field}" + (f"[{error.index}]" if error.index is not None else "")
        raise ValueError(f"{path}: {error.message}") from None


def _delete(item: Any, where: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object, not {json_type(item)}")
    _unknown(item, where, DELETE_FIELDS)
    module, crm_id = _module(item, where), _id(item, where)
    try:
        return RecordInput(module=module, crm_id=crm_id).key
    except RecordError as error:
        raise ValueError(f"{where}.{error.field}: {error.message}") from None


def parse_batch(payload: Any, max_records: int = MAX_RECORDS) -> Batch:
    """Check a decoded JSON body; BatchError lists every problem (up to MAX_ERRORS) and nothing is applied."""
    if not isinstance(payload, dict):
        raise BatchError([f'the body must be a JSON object such as {{"upsert": [...], "delete": [...]}}, '
                          f"not {json_type(payload)}"])
    unknown = [key for key in payload if key not in ("upsert", "delete")]
    if unknown:
        raise BatchError([f'unknown field {unknown[0]!r}: the body has "upsert" and "delete" lists'])
    if "upsert" not in payload and "delete" not in payload:
        raise BatchError(['the body has neither "upsert" nor "delete"'])
    lists = {}
    for name in ("upsert", "delete"):
        value = payload.get(name, [])
        if not isinstance(value, list):
            raise BatchError([f"{name}: must be a list, not {json_type(value)}"])
        lists[name] = value
    total = len(lists["upsert"]) + len(lists["delete"])
    if total > max_records:
        raise BatchError([f"the batch holds {total} records: send at most {max_records} per request"], 413)

    batch, errors = Batch(), []
    where_upserted: dict[tuple[str, str], int] = {}
    for index, item in enumerate(lists["upsert"]):
        where = f"upsert[{index}]"
        try:
            record = _upsert(item, where)
        except ValueError as error:
            errors.append(str(error))
            continue
        if record.key in where_upserted:
            errors.append(f"{where}: {record.module} {record.crm_id!r} is in upsert[{where_upserted[record.key]}] "
                          f"already")
            continue
        where_upserted[record.key] = index
        batch.upserts.append(record)
    deleted: set[tuple[str, str]] = set()
    for index, item in enumerate(lists["delete"]):
        where = f"delete[{index}]"
        try:
            key = _delete(item, where)
        except ValueError as error:
            errors.append(str(error))
            continue
        if key in where_upserted:
            errors.append(f"{where}: {key[0]} {key[1]!r} is also upserted, in upsert[{where_upserted[key]}]")
            continue
        if key not in deleted:
            deleted.add(key)
            batch.deletes.append(key)
    if errors:
        raise BatchError(errors[:MAX_ERRORS])
    return batch
