"""Importing CRM records from a CSV export: read the file, map its columns to fields, check every row, import.

The same rules serve the admin pages (/admin/crm/import) and `flask --app widget import-records`:

- **Reading.** UTF-8 (with or without a byte order mark, as Excel writes it); UTF-16 with its byte order
  mark; otherwise Windows-1252, the Latin-1 that Excel uses on Windows (Latin-1 when even that fails). The
  delimiter is sniffed from the header line: comma, semicolon (Excel in much of Europe) or tab. Quoted
  fields may hold delimiters and line breaks; line numbers are those of the file, the header being line 1.
- **Mapping.** Each field (record id, name or first and last name, email, secondary email, account id or
  name, contact id or name) takes one column. A Zoho CRM export maps itself: its headers ("Record Id",
  "First Name", "Last Name", "Full Name", "Email", "Secondary Email", "Account Name", "Account Name.id",
  "Deal Name", "Contact Name", "Contact Name.id", "Lead Name", ...) are recognised, and the "zcrm_" that its
  ids carry is dropped, so that ids match the ones the CRM's API and merge fields give. Other files need
  the record id column and a name or email column chosen.
- **Rows.** A row without a record id, with an address that is not one, or with an id already on an earlier
  line is an error: it is skipped and listed with its line number. A relation by name (an account name, or a
  deal's contact name) is looked up among the directory's Accounts (Contacts) case-insensitively; a name
  that is unknown or ambiguous leaves the relation empty and is listed as a warning (import Accounts first).
- **Import.** The good rows are upserted in the caller's transaction (see directory.py): re-importing the
  same file changes nothing.

Between the mapping step and the import, an uploaded file waits in the instance folder under a random name
(`crm-imports/`, readable by the owner only); it is deleted after the import, and any left behind after a
day is removed at the next upload.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..extensions import db
from ..models import CrmRecord
from .directory import MODULES, RELATIONS, RecordError, RecordInput, UpsertResult, upsert_records

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
PREVIEW_ROWS = 10
UPLOAD_DIR = "crm-imports"
UPLOAD_MAX_AGE = 24 * 3600  # seconds an abandoned upload is kept
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
_ZOHO_ID = re.compile(r"zcrm_(\d+)")
csv.field_size_limit(1024 * 1024)


@dataclass(frozen=True)
class ImportField:
    """A field a column can be mapped to, and the modules that have it."""

    key: str
    label: str
    modules: tuple[str, ...]
    help: str = ""


FIELDS: tuple[ImportField, ...] = (
    ImportField("crm_id", "Record id", MODULES, "The CRM's own id of the record (required)."),
    ImportField("name", "Name", MODULES, "The full name; for Accounts the account name, for Deals the deal name."),
    ImportField("first_name", "First name", ("Contacts", "Leads"), "Used with the last name when no name column is "
                                                                   "chosen."),
    ImportField("last_name", "Last name", ("Contacts", "Leads")),
    ImportField("email", "Email", MODULES),
    ImportField("secondary_email", "Secondary email", MODULES),
    ImportField("account_id", "Account id", ("Contacts", "Deals"), "The CRM's id of the record's account."),
    ImportField("account_name", "Account name", ("Contacts", "Deals"),
                "Looked up among the directory's Accounts when there is no account id: import Accounts first."),
    ImportField("contact_id", "Contact id", ("Deals",), "The CRM's id of the deal's contact."),
    ImportField("contact_name", "Contact name", ("Deals",),
                "Looked up among the directory's Contacts when there is no contact id: import Contacts first."),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}
NAME_FIELDS = ("name", "first_name", "last_name", "email", "secondary_email")

# Headers recognised without mapping (compared lower-cased, with "_" as a space), the first match winning.
_COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "crm_id": ("record id", "id", "crm id", "zoho id"),
    "first_name": ("first name", "firstname", "given name"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "email": ("email", "e-mail", "email address", "e-mail address", "primary email"),
    "secondary_email": ("secondary email", "secondary e-mail", "email 2", "other email"),
    "account_id": ("account name.id", "account id", "account_id"),
    "account_name": ("account name", "account", "account name.account name"),
    "contact_id": ("contact name.id", "contact id"),
    "contact_name": ("contact name", "contact", "contact name.full name"),
}
_MODULE_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "Contacts": {"crm_id": ("contact id",), "name": ("full name", "contact name", "name")},
    "Leads": {"crm_id": ("lead id",), "name": ("full name", "lead name", "name")},
    "Accounts": {"crm_id": ("account id",), "name": ("account name", "name", "company")},
    "Deals": {"crm_id": ("deal id", "potential id"), "name": ("deal name", "potential name", "name")},
}


class CsvProblem(ValueError):
    """A file that cannot be read as CSV; the message says why, in words for the administrator."""


@dataclass
class ParsedCsv:
    """A CSV file's header and rows (with the line each row starts on), and how it was read."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str
    delimiter: str

    @property
    def delimiter_name(self) -> str:
        """The delimiter in words."""
        return {",": "comma", ";": "semicolon", "\t": "tab"}[self.delimiter]


@dataclass
class RowProblem:
    """An error (the row is skipped) or a warning (the row is imported) about one line of the file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}"


@dataclass
class Plan:
    """What an import would do: the records of the good rows, and the problems of the others."""

    module: str
    records: list[tuple[int, RecordInput]] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    rows: int = 0


@dataclass
class ImportResult:
    """What an import did."""

    plan: Plan
    upsert: UpsertResult


# -- reading --------------------------------------------------------------------------------------------------------

def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "UTF-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _sniff_delimiter(text: str) -> str:
    """The delimiter that the header line uses most often outside quotes (comma if none)."""
    counts = dict.fromkeys(",;\t", 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "\r\n":
            break
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(data: bytes) -> ParsedCsv:
    """Parse a CSV file's bytes; CsvProblem says why a file cannot be used."""
    if not data.strip():
        raise CsvProblem("The file is empty.")
    if data.startswith(b"PK\x03\x04"):
        raise CsvProblem("This is an Excel workbook (or another zip file), not CSV: save or export it as CSV.")
    text, encoding = _decode(data)
    if "\x00" in text:
        raise CsvProblem("This is not a CSV file: it holds binary data. Export the records as CSV.")
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            if headers is None:
                headers = [" ".join(cell.split()) for cell in row]
            else:
                rows.append((start, row))
    except csv.Error as error:
        raise CsvProblem(f"Line {reader.line_num}: the file is not valid CSV ({error}).") from None
    if headers is None:
        raise CsvProblem("The file is empty.")
    if not rows:
        raise CsvProblem("The file has a header line but no records under it.")
    return ParsedCsv(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)


# -- mapping --------------------------------------------------------------------------------------------------------

def fields_for(module: str) -> list[ImportField]:
    """The fields a module's columns can be mapped to."""
    return [f for f in FIELDS if module in f.modules]


def _normalise_header(header: str) -> str:
    return " ".join(header.replace("_", " ").lower().split())


def detect_mapping(module: str, headers: list[str]) -> dict[str, int]:
    """The columns recognised by their headers (a Zoho export's, and common ones): field key → column index."""
    normalised = [_normalise_header(header) for header in headers]
    mapping: dict[str, int] = {}
    used: set[int] = set()
    for f in fields_for(module):
        aliases = _COMMON_ALIASES.get(f.key, ()) + _MODULE_ALIASES[module].get(f.key, ())
        for alias in aliases:
            index = next((i for i, h in enumerate(normalised) if h == alias and i not in used), None)
            if index is not None:
                mapping[f.key] = index
                used.add(index)
                break
    return mapping


def mapping_by_names(module: str, headers: list[str], pairs: dict[str, str]) -> dict[str, int]:
    """A mapping from field keys to column names (the command line's --map); ValueError says what is wrong."""
    keys = {f.key for f in fields_for(module)}
    mapping = detect_mapping(module, headers)
    normalised = [_normalise_header(header) for header in headers]
    for key, column in pairs.items():
        if key not in keys:
            raise ValueError(f"{key!r} is not a field of {module}: choose from {', '.join(sorted(keys))}")
        if not column:
            mapping.pop(key, None)
            continue
        wanted = _normalise_header(column)
        if wanted not in normalised:
            raise ValueError(f"the file has no column {column!r} (its columns: {', '.join(headers)})")
        mapping[key] = normalised.index(wanted)
    return mapping


def check_mapping(module: str, mapping: dict[str, int], headers: list[str]) -> dict[str, str]:
    """What is missing or wrong in a mapping, by field key (empty when it can be imported)."""
    errors = {}
    for key, index in mapping.items():
        if key not in FIELDS_BY_KEY or module not in FIELDS_BY_KEY[key].modules:
            errors[key] = f"{module} have no field {key!r}."
        elif not 0 <= index < len(headers):
            errors[key] = "Choose one of the file's columns."
    if "crm_id" not in mapping:
        errors["crm_id"] = "Choose the column that holds the CRM's record id."
    if not any(key in mapping for key in NAME_FIELDS):
        errors["name"] = "Choose at least a name or an email column."
    return errors


# -- checking the rows ----------------------------------------------------------------------------------------------

def _clean_id(value: str) -> str:
    value = value.strip()
    zoho = _ZOHO_ID.fullmatch(value)
    return zoho.group(1) if zoho else value


def _names_of(module: str) -> dict[str, list[str]]:
    """The directory's records of a module by case-folded name: name → CRM ids."""
    found: dict[str, list[str]] = {}
    for crm_id, name in db.session.execute(db.select(CrmRecord.crm_id, CrmRecord.name)
                                           .where(CrmRecord.module == module)):
        if name:
            found.setdefault(" ".join(name.split()).casefold(), []).append(crm_id)
    return found


def _resolve(name: str, names: dict[str, list[str]], module: str, noun: str) -> tuple[str | None, str | None]:
    """(CRM id, None) for a known name, (None, warning) otherwise."""
    ids = names.get(" ".join(name.split()).casefold(), [])
    if len(ids) == 1:
        return ids[0], None
    if not ids:
        return None, (f"no {noun} named {name!r} in the directory: imported without its {noun} "
                      f"(import {module} first, then this file again)")
    return None, f"{len(ids)} {module} are named {name!r}: imported without its {noun} (map the {noun} id instead)"


def plan_import(parsed: ParsedCsv, module: str, mapping: dict[str, int]) -> Plan:
    """Check every row against a (complete) mapping: the records to import, and each row's problems."""
    headers = parsed.headers
    plan = Plan(module=module, rows=len(parsed.rows))
    lookups: dict[str, dict[str, list[str]]] = {}

    def names(target: str) -> dict[str, list[str]]:
        if target not in lookups:
            lookups[target] = _names_of(target)
        return lookups[target]

    seen: dict[str, int] = {}
    for line, row in parsed.rows:
        def cell(key: str, row: list[str] = row) -> str:
            index = mapping.get(key)
            return row[index].strip() if index is not None and index < len(row) else ""

        crm_id = _clean_id(cell("crm_id"))
        if not crm_id:
            plan.errors.append(RowProblem(line, f"the record id is empty (column {headers[mapping['crm_id']]!r})"))
            continue
        if crm_id in seen:
            plan.errors.append(RowProblem(line, f"the record id {crm_id} is on line {seen[crm_id]} already"))
            continue
        name = cell("name") or " ".join(part for part in (cell("first_name"), cell("last_name")) if part)
        relations: dict[str, str | None] = {"account": None, "contact": None}
        warnings = []
        for noun, target in (("account", "Accounts"), ("contact", "Contacts")):
            if noun not in RELATIONS[module]:
                continue
            relations[noun] = _clean_id(cell(f"{noun}_id")) or None
            if relations[noun] is None and cell(f"{noun}_name"):
                relations[noun], warning = _resolve(cell(f"{noun}_name"), names(target), target, noun)
                if warning:
                    warnings.append(RowProblem(line, warning))
        email_keys = ("email", "secondary_email")
        try:
            record = RecordInput(module=module, crm_id=crm_id, name=name, emails=tuple(cell(k) for k in email_keys),
                                 account_crm_id=relations["account"], contact_crm_id=relations["contact"])
        except RecordError as error:
            key = email_keys[error.index] if error.field == "emails" and error.index is not None else {
                "id": "crm_id", "account_id": "account_id", "contact_id": "contact_id"}.get(error.field, error.field)
            column = headers[mapping[key]] if key in mapping else getattr(FIELDS_BY_KEY.get(key), "label", key)
            plan.errors.append(RowProblem(line, f"{column}: {error.message}"))
            continue
        seen[crm_id] = line
        plan.records.append((line, record))
        plan.warnings.extend(warnings)
    return plan


def run_import(plan: Plan) -> ImportResult:
    """Upsert a plan's records in the caller's transaction."""
    return ImportResult(plan=plan, upsert=upsert_records([record for _, record in plan.records]))


# -- uploads waiting between the mapping and the import --------------------------------------------------------------

@dataclass
class Upload:
    """An uploaded file waiting for its import."""

    upload_id: str
    filename: str
    module: str
    data: bytes


def _upload_dir(instance_path: str) -> Path:
    folder = Path(instance_path) / UPLOAD_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _write_private(path: Path, data: bytes) -> None:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)


def save_upload(instance_path: str, data: bytes, filename: str, module: str) -> str:
    """Keep an uploaded file until its import; returns its random id. Removes uploads abandoned a day ago."""
    purge_uploads(instance_path)
    folder = _upload_dir(instance_path)
    upload_id = secrets.token_urlsafe(24)
    meta = {"filename": re.split(r"[\\/]", filename or "")[-1][:200] or "records.csv", "module": module}
    _write_private(folder / f"{upload_id}.csv", data)
    _write_private(folder / f"{upload_id}.json", json.dumps(meta).encode("utf-8"))
    return upload_id


def load_upload(instance_path: str, upload_id: str) -> Upload | None:
    """The upload with this id, or None (unknown, deleted, or not an id at all)."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        return None
    folder = Path(instance_path) / UPLOAD_DIR
    try:
        meta: dict[str, Any] = json.loads((folder / f"{upload_id}.json").read_text(encoding="utf-8"))
        data = (folder / f"{upload_id}.csv").read_bytes()
    except (OSError, ValueError):
        return None
    if meta.get("module") not in MODULES:
        return None
    return Upload(upload_id=upload_id, filename=str(meta.get("filename", "")), module=meta["module"], data=data)


def delete_upload(instance_path: str, upload_id: str) -> None:
    """Remove an upload (done after its import)."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        return
    folder = Path(instance_path) / UPLOAD_DIR
    for suffix in (".csv", ".json"):
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{upload_id}{suffix}").unlink()


def purge_uploads(instance_path: str, max_age: float = UPLOAD_MAX_AGE) -> None:
    """Remove uploads older than `max_age` seconds (abandoned between the mapping and the import)."""
    folder = Path(instance_path) / UPLOAD_DIR
    if not folder.is_dir():
        return
    limit = time.time() - max_age
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass
