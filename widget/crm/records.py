"""The CRM directory's records as the widget reads them: a record by its id, the records whose addresses count as a
record's own (an account's contacts, a deal's account and contact), and those addresses."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, or_, select

from ..extensions import db
from ..models import CRM_MODULES, CrmAddress, CrmRecord


def find_record(module: str, crm_id: str) -> CrmRecord | None:
    """A CRM record by its module and the CRM's own id."""
    if module not in CRM_MODULES:
        return None
    return db.session.scalar(select(CrmRecord).where(CrmRecord.module == module, CrmRecord.crm_id == crm_id))


def related_records(record: CrmRecord) -> ColumnElement[bool]:
    """Which CRM records' addresses count as the record's own: itself, an account's contacts, a deal's account
    and contact."""
    clause = CrmRecord.id == record.id
    if record.module == "Accounts":
        clause = or_(clause, and_(CrmRecord.module == "Contacts", CrmRecord.account_crm_id == record.crm_id))
    elif record.module == "Deals":
        if record.account_crm_id:
            clause = or_(clause, and_(CrmRecord.module == "Accounts", CrmRecord.crm_id == record.account_crm_id))
        if record.contact_crm_id:
            clause = or_(clause, and_(CrmRecord.module == "Contacts", CrmRecord.crm_id == record.contact_crm_id))
    return clause


def record_addresses(record: CrmRecord) -> Select:
    """The addresses whose mail the record shows (a subquery)."""
    return (select(CrmAddress.address).join(CrmRecord, CrmRecord.id == CrmAddress.record_id)
            .where(related_records(record)))


def primary_address(record: CrmRecord) -> str:
    """The address a new email from the record goes to: the record's first address; for a deal without one, its
    contact's."""
    first = (select(CrmAddress.address).join(CrmRecord, CrmRecord.id == CrmAddress.record_id)
             .order_by(CrmAddress.id).limit(1))
    address = db.session.scalar(first.where(CrmRecord.id == record.id))
    if address is None and record.module == "Deals" and record.contact_crm_id:
        address = db.session.scalar(first.where(CrmRecord.module == "Contacts",
                                                CrmRecord.crm_id == record.contact_crm_id))
    return address or ""
