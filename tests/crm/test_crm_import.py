"""The CRM directory's admin pages and its CSV import: Zoho exports import as they are, other files are mapped,
every row's problem is listed with its line number, a second import changes nothing, new addresses re-link past
mail; the records list; the command line; only administrators get in, and every POST needs its CSRF token."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from contoso import PASSWORDS
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token, post

from widget.crm.commands import api_token_command, import_records_command
from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, DirectoryAddition, Email, FolderSync, User
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox
from widget.secret_box import encrypt
from widget.sync.runner import run_sync

ALICE = "alice@contoso.com"

# A Contacts export of Zoho CRM as it comes: UTF-8 with a byte order mark, ids with "zcrm_", lookup columns with
# their ".id" twins, a quoted value holding the delimiter, mixed-case addresses, a contact without any address.
ZOHO_CONTACTS = (
    "\ufeffRecord Id,Contact Owner.id,Contact Owner,Lead Source,First Name,Last Name,Account Name.id,Account Name,"
    "Email,Title,Phone,Mobile,Email Opt Out,Created Time,Modified Time,Full Name,Secondary Email,Mailing City\n"
    "zcrm_4876876000000331001,zcrm_4876876000000225013,Megan Bowen,Trade Show,Lena,Fischer,"
    "zcrm_4876876000000330011,Acme Maschinenbau GmbH,Lena.Fischer@Acme.example,Head of Purchasing,+49 30 1234567,,"
    "false,2024-03-04 10:12:44,2024-05-01 08:00:00,Lena Fischer,lena@fischer-home.example,Berlin\n"
    "zcrm_4876876000000331002,zcrm_4876876000000225013,Megan Bowen,Web Site,Jürgen,Müller,"
    "zcrm_4876876000000330011,Acme Maschinenbau GmbH,j.mueller@acme.example,\"Engineer, R&D\",,+49 171 555,"
    "false,2024-03-05 09:00:00,2024-03-05 09:00:00,Jürgen Müller,,München\n"
    "zcrm_4876876000000331003,zcrm_4876876000000225014,Alex Wilber,Cold Call,Tariq,Ali,,,,Owner,,,"
    "true,2024-04-01 12:00:00,2024-04-01 12:00:00,Tariq Ali,,Leeds\n"
)

# A Leads export: Windows line ends, no "Full Name" column (the name is first and last name), a "Company" column
# that is no relation.
ZOHO_LEADS = (
    "Record Id,Lead Owner.id,Lead Owner,Company,First Name,Last Name,Title,Email,Phone,Lead Source,Lead Status,"
    "Secondary Email,Created Time\r\n"
    "zcrm_4876876000000412001,zcrm_4876876000000225013,Megan Bowen,Globex Ltd,Hank,Scorpio,CEO,"
    "hank@globex.example,,Web Site,Not Contacted,,2024-05-02 11:00:00\r\n"
    "zcrm_4876876000000412002,zcrm_4876876000000225013,Megan Bowen,Initech,Bill,Lumbergh,VP,"
    "bill.lumbergh@initech.example,,Partner,Contacted,BILL@lumbergh.example,2024-05-03 15:30:00\r\n"
)

ZOHO_ACCOUNTS = (
    "Record Id,Account Owner.id,Account Owner,Account Name,Website,Phone,Industry,Created Time\n"
    "zcrm_4876876000000330011,zcrm_4876876000000225013,Megan Bowen,Acme Maschinenbau GmbH,https://acme.example,,"
    "Manufacturing,2024-03-01 10:00:00\n"
    "zcrm_4876876000000330012,zcrm_4876876000000225013,Megan Bowen,Globex Ltd,https://globex.example,,"
    "Energy,2024-03-02 10:00:00\n"
)

# A file of another CRM, saved by Excel in Germany: semicolons, Windows-1252, headers nobody recognises.
CUSTOM_CSV = (
    "Kundennummer;Vorname;Nachname;E-Mail-Adresse;Firma\r\n"
    "K-100;Jörg;Weiß;joerg.weiss@example.de;Weiß & Söhne\r\n"
    "K-101;Anna;Schäfer;anna@schaefer.example;\r\n"
).encode("cp1252")


def _text(reply) -> str:  # noqa: ANN001 - a test response
    """The page's text as a person reads it."""
    text = re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True))
    for entity, char in (("&#39;", "'"), ("&amp;", "&"), ("&#34;", '"'), ("&quot;", '"'), ("&lt;", "<"),
                         ("&gt;", ">")):
        text = text.replace(entity, char)
    return " ".join(text.split())


def _upload(client: FlaskClient, data: bytes | str, module: str, filename: str = "export.csv"):  # noqa: ANN202
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return post(client, "/admin/crm/import", {"module": module, "file": (io.BytesIO(raw), filename)},
                token_from="/admin/crm/import", content_type="multipart/form-data")


def _uploaded(client: FlaskClient, data: bytes | str, module: str) -> str:
    """Upload a file; the URL of its mapping page."""
    reply = _upload(client, data, module)
    assert reply.status_code == 302, _text(reply)
    return reply.headers["Location"]


def _import(client: FlaskClient, data: bytes | str, module: str, mapping: dict[str, str] | None = None):  # noqa: ANN202
    location = _uploaded(client, data, module)
    form = {"action": "import", **(mapping or {})}
    return post(client, location, form, token_from=location)


def _records(app: Flask) -> dict[tuple[str, str], dict]:
    with app.app_context():
        found = {}
        for record in db.session.scalars(db.select(CrmRecord)):
            addresses = sorted(db.session.scalars(db.select(CrmAddress.address)
                                                  .where(CrmAddress.record_id == record.id)))
            found[(record.module, record.crm_id)] = {
                "name": record.name, "emails": addresses, "account": record.account_crm_id,
                "contact": record.contact_crm_id, "updated_at": record.updated_at}
        return found


# -- Zoho exports ---------------------------------------------------------------------------------------------------

def test_it_imports_a_zoho_contacts_export_without_mapping(app, admin_client):
    location = _uploaded(admin_client, ZOHO_CONTACTS, "Contacts")
    page = admin_client.get(location)
    assert page.status_code == 200
    text = _text(page)
    assert "The columns were recognised (as in a Zoho CRM export): check the preview, then import." in text
    assert "3 rows under a header of 18 columns; read as UTF-8, comma-separated." in text
    assert "3 of 3 rows will be imported" in text
    html = page.get_data(as_text=True)
    assert re.search(r'<select id="map-crm_id" name="map-crm_id"[^>]*>\s*<option value="">— none —</option>\s*'
                     r'<option value="0" selected>Record Id', html)
    preview = re.search(r'<tr id="preview-line-3">.*?</tr>', html, re.S).group(0)
    assert "4876876000000331002" in preview and "Jürgen Müller" in preview and "j.mueller@acme.example" in preview

    reply = post(admin_client, location, {"action": "import"}, token_from=location)
    assert reply.status_code == 200
    assert "3 created, 0 updated, 0 unchanged." in _text(reply)
    records = _records(app)
    assert set(records) == {("Contacts", "4876876000000331001"), ("Contacts", "4876876000000331002"),
                            ("Contacts", "4876876000000331003")}
    lena = records[("Contacts", "4876876000000331001")]
    assert lena["name"] == "Lena Fischer"
    assert lena["emails"] == ["lena.fischer@acme.example", "lena@fischer-home.example"]
    assert lena["account"] == "4876876000000330011" and lena["contact"] is None
    assert records[("Contacts", "4876876000000331003")] | {"updated_at": None} == {
        "name": "Tariq Ali", "emails": [], "account": None, "contact": None, "updated_at": None}

    listing = _text(admin_client.get("/admin/crm?module=Contacts"))
    assert "3 records." in listing
    assert "Contacts 4876876000000331001 Lena Fischer lena.fischer@acme.example lena@fischer-home.example" in listing
    assert "Account: 4876876000000330011 (not in the directory)" in listing


def test_it_imports_a_zoho_leads_export_without_mapping(app, admin_client):
    reply = _import(admin_client, ZOHO_LEADS, "Leads")
    assert reply.status_code == 200
    assert "2 created, 0 updated, 0 unchanged." in _text(reply)
    records = _records(app)
    assert {key: (r["name"], r["emails"], r["account"]) for key, r in records.items()} == {
        ("Leads", "4876876000000412001"): ("Hank Scorpio", ["hank@globex.example"], None),
        ("Leads", "4876876000000412002"): ("Bill Lumbergh", ["bill.lumbergh@initech.example", "bill@lumbergh.example"],
                                           None),
    }


def test_it_resolves_account_and_contact_names_case_insensitively(app, admin_client):
    assert "2 created" in _text(_import(admin_client, ZOHO_ACCOUNTS, "Accounts"))
    contacts = (
        "Record Id,First Name,Last Name,Account Name,Email\n"
        "zcrm_501,Lena,Fischer,ACME MASCHINENBAU gmbh,lena.fischer@acme.example\n"
        "zcrm_502,Hank,Scorpio,  Globex   Ltd ,hank@globex.example\n"
        "zcrm_503,Peter,Gibbons,Initrode,peter@initrode.example\n"
    )
    reply = _import(admin_client, contacts, "Contacts")
    text = _text(reply)
    assert "3 created, 0 updated, 0 unchanged." in text
    assert ("Line 4: no account named 'Initrode' in the directory: imported without its account (import Accounts "
            "first, then this file again)") in text
    deals = (
        "Record Id,Deal Name,Account Name,Contact Name,Stage,Amount\n"
        "zcrm_901,40 seats for Acme,acme maschinenbau GMBH,lena fischer,Negotiation,12000\n"
    )
    assert "1 created" in _text(_import(admin_client, deals, "Deals"))
    records = _records(app)
    assert records[("Contacts", "501")]["account"] == "4876876000000330011"
    assert records[("Contacts", "502")]["account"] == "4876876000000330012"
    assert records[("Contacts", "503")]["account"] is None
    assert records[("Deals", "901")] | {"updated_at": None} == {
        "name": "40 seats for Acme", "emails": [], "account": "4876876000000330011", "contact": "501",
        "updated_at": None}
    listing = _text(admin_client.get("/admin/crm?module=Deals"))
    assert "Account: Acme Maschinenbau GmbH Contact: Lena Fischer" in listing


# -- Other files ----------------------------------------------------------------------------------------------------

def test_it_needs_the_mapping_for_a_custom_csv(app, admin_client):
    location = _uploaded(admin_client, CUSTOM_CSV, "Contacts")
    page = admin_client.get(location)
    text = _text(page)
    assert "read as Windows-1252, semicolon-separated" in text
    assert "Choose the columns to import: 2 fields need a column (see below)." in text
    assert "Choose the column that holds the CRM's record id." in text
    assert "Choose at least a name or an email column." in text
    assert "Kundennummer (e.g. K-100)" in text and "Nachname (e.g. Weiß)" in text

    reply = post(admin_client, location, {"action": "import"}, token_from=location)
    assert reply.status_code == 422
    assert "Choose the column that holds the CRM's record id." in _text(reply)
    assert _records(app) == {}

    mapping = {"map-crm_id": "0", "map-first_name": "1", "map-last_name": "2", "map-email": "3"}
    reply = post(admin_client, location, {"action": "preview", **mapping}, token_from=location)
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert '<option value="3" selected>E-Mail-Adresse' in html  # the submitted mapping is shown again
    preview = _text(reply)
    assert "2 of 2 rows will be imported" in preview and "K-100 Jörg Weiß joerg.weiss@example.de" in preview
    assert _records(app) == {}  # a preview imports nothing

    reply = post(admin_client, location, {"action": "import", **mapping}, token_from=location)
    assert "2 created, 0 updated, 0 unchanged." in _text(reply)
    records = _records(app)
    assert records[("Contacts", "K-100")]["name"] == "Jörg Weiß"
    assert records[("Contacts", "K-101")]["emails"] == ["anna@schaefer.example"]


def test_it_lists_each_row_error_with_its_line_number_and_imports_the_other_rows(app, admin_client):
    data = (
        "Record Id,Full Name,Email,Secondary Email\n"
        "1001,Lena Fischer,lena@acme.example,\n"  # line 2
        ",No Id,noid@acme.example,\n"  # line 3
        "1002,Bad Address,lena at acme,\n"  # line 4
        '1003,"Multi\nLine",multi@acme.example,\n'  # lines 5-6
        "1004,Bad Secondary,ok@acme.example,not-an-address@\n"  # line 7
        "\n"  # line 8: blank, skipped
        "1001,Again,again@acme.example,\n"  # line 9
    )
    location = _uploaded(admin_client, data, "Contacts")
    expected = [
        "Line 3: the record id is empty (column 'Record Id')",
        "Line 4: Email: 'lena at acme' is not an e-mail address",
        "Line 7: Secondary Email: 'not-an-address@' is not an e-mail address",
        "Line 9: the record id 1001 is on line 2 already",
    ]
    preview = _text(admin_client.get(location))
    assert "2 of 6 rows will be imported; 4 rows have errors and are skipped." in preview
    for message in expected:
        assert message in preview
    reply = post(admin_client, location, {"action": "import"}, token_from=location)
    text = _text(reply)
    assert "2 created, 0 updated, 0 unchanged; 4 rows skipped." in text
    listed = re.findall(r'<li class="error">([^<]+)</li>', reply.get_data(as_text=True))
    assert [item.replace("&#39;", "'") for item in listed] == expected
    records = _records(app)
    assert sorted(records) == [("Contacts", "1001"), ("Contacts", "1003")]
    assert records[("Contacts", "1001")]["name"] == "Lena Fischer"  # the first of the two lines with id 1001
    assert records[("Contacts", "1003")]["name"] == "Multi Line"


def test_it_changes_nothing_when_the_same_file_is_imported_again(app, admin_client):
    assert "3 created, 0 updated, 0 unchanged." in _text(_import(admin_client, ZOHO_CONTACTS, "Contacts"))
    before = _records(app)
    assert "0 created, 0 updated, 3 unchanged." in _text(_import(admin_client, ZOHO_CONTACTS, "Contacts"))
    assert _records(app) == before

    changed = (ZOHO_CONTACTS.replace("lena@fischer-home.example", "")
               .replace("Tariq Ali,,Leeds", "Tariq Ali,t@ali.example,Leeds"))
    assert "0 created, 2 updated, 1 unchanged." in _text(_import(admin_client, changed, "Contacts"))
    after = _records(app)
    assert after[("Contacts", "4876876000000331001")]["emails"] == ["lena.fischer@acme.example"]
    assert after[("Contacts", "4876876000000331003")]["emails"] == ["t@ali.example"]
    assert after[("Contacts", "4876876000000331002")] == before[("Contacts", "4876876000000331002")]


def test_it_keeps_the_upload_in_the_instance_folder_until_the_import(app, admin_client):
    location = _uploaded(admin_client, ZOHO_LEADS, "Leads")
    upload_id = location.rsplit("/", 1)[1]
    folder = Path(app.instance_path) / "crm-imports"
    kept = sorted(path.name for path in folder.iterdir())
    assert kept == [f"{upload_id}.csv", f"{upload_id}.json"]
    assert len(upload_id) >= 32 and "export" not in upload_id
    assert (folder / f"{upload_id}.csv").stat().st_mode & 0o077 == 0  # the owner's only
    cookie = admin_client.get_cookie("widget_session")
    assert "Hank" not in cookie.value and len(cookie.value) < 1000

    post(admin_client, location, {"action": "import"}, token_from=location)
    assert list(folder.iterdir()) == []
    gone = admin_client.get(location)
    assert gone.status_code == 404
    assert "an uploaded file is gone once it is imported or cancelled" in _text(gone)
    assert admin_client.get("/admin/crm/import/..%2F..%2Fsecret").status_code == 404

    location = _uploaded(admin_client, ZOHO_LEADS, "Leads")
    reply = post(admin_client, f"{location}/cancel", {}, token_from=location)
    assert reply.status_code == 302
    assert "The upload is cancelled: nothing was imported." in _text(admin_client.get(reply.headers["Location"]))
    assert list(folder.iterdir()) == []
    assert len(_records(app)) == 2


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty."),
    (b"\n\n", "The file is empty."),
    (b"Record Id,Email\n", "The file has a header line but no records under it."),
    (b"PK\x03\x04\x14\x00\x06\x00",
     "This is an Excel workbook (or another zip file), not CSV: save or export it as CSV."),
    (b"Record Id,Email\n1,\x00\x00\x01", "This is not a CSV file: it holds binary data. Export the records as CSV."),
])
def test_it_refuses_a_file_it_cannot_read_as_csv(app, admin_client, data, message):
    reply = _upload(admin_client, data, "Contacts")
    assert reply.status_code == 422
    assert message in _text(reply)
    assert not (Path(app.instance_path) / "crm-imports").exists() or not any(
        (Path(app.instance_path) / "crm-imports").iterdir())


def test_it_refuses_an_upload_without_a_file_or_module_and_a_file_over_10_mb(app, admin_client):
    reply = post(admin_client, "/admin/crm/import", {"module": "Opportunities"}, token_from="/admin/crm/import")
    assert reply.status_code == 422
    text = _text(reply)
    assert "Choose the module of the records: Contacts, Leads, Accounts, Deals." in text
    assert "Choose a CSV file to import." in text
    big = b"Record Id,Email\n" + b"1,someone@example.com\n" * (11 * 1024 * 1024 // 21)
    reply = _upload(admin_client, big, "Contacts")
    assert reply.status_code == 413
    assert "The file is larger than 10 MB" in _text(reply)
    just_over = b"Record Id,Email\n" + b"x" * (10 * 1024 * 1024)
    reply = _upload(admin_client, just_over, "Contacts")
    assert reply.status_code == 413
    assert not (Path(app.instance_path) / "crm-imports").exists() or not any(
        (Path(app.instance_path) / "crm-imports").iterdir())


# -- Re-linking past mail --------------------------------------------------------------------------------------------

def _add_user(app: Flask, email: str, status: str = "authorized", **values) -> int:  # noqa: ANN003
    with app.app_context():
        user = User(email=email, exchange_username=email, exchange_password=encrypt(PASSWORDS.get(email, "pw")),
                    status=status, **values)
        db.session.add(user)
        db.session.flush()
        for folder in ("inbox", "sentitems"):
            db.session.add(FolderSync(user_id=user.id, folder=folder, sync_state=f"state-{email}-{folder}",
                                      pass_number=1, pass_complete=True))
        db.session.commit()
        return user.id


def _sync_states(app: Flask) -> dict[tuple[int, str], str | None]:
    with app.app_context():
        return {(row.user_id, row.folder): row.sync_state for row in db.session.scalars(db.select(FolderSync))}


def _due(app: Flask) -> dict[str, datetime | None]:
    with app.app_context():
        return {user.email: user.sync_due_at for user in db.session.scalars(db.select(User))}


def test_it_keeps_folder_syncs_and_makes_authorized_users_due_when_new_addresses_arrive(app, admin_client):
    later = datetime.now(UTC) + timedelta(minutes=15)
    _add_user(app, "alice@contoso.com", sync_due_at=later)
    _add_user(app, "bob@contoso.com", sync_due_at=later, disabled=True)
    _add_user(app, "carol@contoso.com", status="needs_password", sync_due_at=None)
    started = datetime.now(UTC)
    text = _text(_import(admin_client, ZOHO_LEADS, "Leads"))
    assert ("New addresses are in the directory: past mail from and to them appears on the records after each "
            "account's next sync.") in text
    assert None not in set(_sync_states(app).values())  # a catch-up for the new addresses, never a full pass
    with app.app_context():
        learnt = set(db.session.scalars(db.select(DirectoryAddition.address)))
    assert "hank@globex.example" in learnt
    due = _due(app)
    assert started <= due["alice@contoso.com"] <= datetime.now(UTC)
    assert due["bob@contoso.com"] == later  # disabled: stays off
    assert due["carol@contoso.com"] is None  # waits for a password; its catch-up comes then
    assert due["admin@example.com"] is None

    with app.app_context():
        db.session.execute(db.update(FolderSync).values(sync_state="kept"))
        db.session.execute(db.update(User).values(sync_due_at=later))
        db.session.commit()
    # Nothing new (the same file), or only a known address moving to another record: nothing to catch up on.
    _import(admin_client, ZOHO_LEADS, "Leads")
    moved = "Record Id,Full Name,Email\n777,Hank Again,HANK@globex.example\n"
    text = _text(_import(admin_client, moved, "Leads"))
    assert "1 created" in text and "New addresses" not in text
    assert set(_sync_states(app).values()) == {"kept"}
    assert set(_due(app).values()) == {later}


def test_it_shows_last_months_mail_of_a_contact_imported_today(app, sandbox, admin_client):
    alice = _add_user(app, ALICE)
    with app.app_context():  # the folder states of _add_user are invented: start from a real first sync
        db.session.execute(db.delete(FolderSync))
        db.session.commit()
    when = datetime.now(UTC) - timedelta(days=20)
    props = {"Subject": "Our order of March", "ToRecipients": [Mailbox(ALICE)], "Body": Body("HTML", "<p>Hi</p>")}
    message_defaults(props, Mailbox("lena.fischer@acme.example", "Lena Fischer"), when)
    deliver_message(sandbox.store, props, when)

    def sync_and_list() -> list[str]:
        with app.app_context():
            run = run_sync(db.session.get(User, alice))
            assert run.outcome == "ok", run.error
            return list(db.session.scalars(db.select(Email.subject).where(Email.user_id == alice)))

    assert sync_and_list() == []  # nobody in the directory has this address: the mail stays in Exchange
    _import(admin_client, ZOHO_CONTACTS, "Contacts")
    assert _due(app)[ALICE] <= datetime.now(UTC)
    assert sync_and_list() == ["Our order of March"]
    assert sync_and_list() == ["Our order of March"]


# -- The records list ------------------------------------------------------------------------------------------------

def test_it_lists_searches_filters_and_pages_the_records(app, admin_client):
    with app.app_context():
        for number in range(120):
            record = CrmRecord(module="Contacts" if number % 2 else "Leads", crm_id=f"R{number:03}",
                               name=f"Person {number:03}")
            db.session.add(record)
            db.session.flush()
            db.session.add(CrmAddress(record_id=record.id, address=f"person{number:03}@example.com"))
        db.session.commit()
    page = _text(admin_client.get("/admin/crm"))
    assert "Contacts: 60 · Leads: 0" not in page and "Contacts: 60 · Leads: 60 · Accounts: 0 · Deals: 0." in page
    assert "120 records, page 1 of 3." in page
    assert "Person 001" in page and "Person 099" in page and "Person 000" not in page  # Contacts first, by name
    assert "Next page" in page and "Previous page" not in page
    page = _text(admin_client.get("/admin/crm?page=3"))
    assert "page 3 of 3" in page and "Previous page" in page and "Next page" not in page
    page = _text(admin_client.get("/admin/crm?page=99"))
    assert "page 3 of 3" in page

    assert "1 record." in _text(admin_client.get("/admin/crm?q=person042%40"))  # by address
    assert "1 record." in _text(admin_client.get("/admin/crm?q=r042"))  # by record id
    page = _text(admin_client.get("/admin/crm?q=person+04"))  # by name
    assert "10 records." in page
    page = _text(admin_client.get("/admin/crm?q=person+04&module=Leads"))
    assert "5 records." in page and "Person 041" not in page and "Person 040" in page
    assert "No record matches “zzz” in Deals." in _text(admin_client.get("/admin/crm?q=zzz&module=Deals"))
    assert "No record matches “100%”" in _text(admin_client.get("/admin/crm?q=100%25"))


def test_it_has_a_label_for_every_field(admin_client):
    location = _uploaded(admin_client, ZOHO_CONTACTS, "Contacts")
    for path in ("/admin/crm", "/admin/crm/import", location, "/admin/crm/tokens"):
        html = admin_client.get(path).get_data(as_text=True)
        fields = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="(?:hidden|submit)")[^>]*\bid="([^"]+)"', html)
        assert fields, path
        for field_id in fields:
            assert f'for="{field_id}"' in html, f"{path}: no label for #{field_id}"


# -- Who gets in -----------------------------------------------------------------------------------------------------

CRM_ADMIN_URLS = [
    ("GET", "/admin/crm"),
    ("GET", "/admin/crm/import"),
    ("POST", "/admin/crm/import"),
    ("GET", "/admin/crm/import/{upload}"),
    ("POST", "/admin/crm/import/{upload}"),
    ("POST", "/admin/crm/import/{upload}/cancel"),
    ("GET", "/admin/crm/tokens"),
    ("POST", "/admin/crm/tokens"),
    ("POST", "/admin/crm/tokens/{token}/revoke"),
]


@pytest.fixture
def waiting(app, admin_client) -> dict[str, str]:
    """An upload waiting for its import and an API token, made by the administrator, who then signs out."""
    location = _uploaded(admin_client, ZOHO_LEADS, "Leads")
    post(admin_client, "/admin/crm/tokens", {"name": "Zoho webhooks"}, token_from="/admin/crm/tokens")
    post(admin_client, "/signout", {}, token_from="/admin/crm")
    with app.app_context():
        from widget.models import ApiToken

        token_id = db.session.scalar(db.select(ApiToken.id))
    return {"upload": location.rsplit("/", 1)[1], "token": str(token_id)}


def _stored(app: Flask) -> dict:
    with app.app_context():
        from widget.models import ApiToken

        return {"records": _records(app),
                "tokens": [(t.name, t.revoked_at) for t in db.session.scalars(db.select(ApiToken))],
                "uploads": sorted(p.name for p in (Path(app.instance_path) / "crm-imports").iterdir())}


def _each_url(ids: dict[str, str]) -> list[tuple[str, str]]:
    return [(method, path.format(**ids)) for method, path in CRM_ADMIN_URLS]


FORM = {"action": "import", "module": "Leads", "name": "Sneaky"}


def test_it_lists_every_crm_admin_url_in_these_tests(app):
    routes = {(method, re.sub(r"<(?:int:)?(\w+)_id>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("crm_admin.") for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(CRM_ADMIN_URLS)


def test_it_sends_anonymous_visitors_to_sign_in(app, client, waiting):
    before = _stored(app)
    for method, path in _each_url(waiting):
        reply = client.get(path) if method == "GET" else post(client, path, FORM, token_from="/signin")
        assert reply.status_code == 302, f"{method} {path}"
        assert reply.headers["Location"].startswith("/signin"), f"{method} {path}"
    assert _stored(app) == before


def test_it_refuses_a_signed_in_user_who_is_not_an_administrator(app, client, sign_in, waiting):
    assert sign_in(ALICE, PASSWORDS[ALICE]).status_code == 302
    before = _stored(app)
    for method, path in _each_url(waiting):
        reply = client.get(path) if method == "GET" else post(client, path, FORM, token_from="/dashboard")
        assert reply.status_code == 403, f"{method} {path}"
        assert "Only an administrator of the widget can open this page." in _text(reply), f"{method} {path}"
    assert _stored(app) == before


def test_it_refuses_every_post_without_a_csrf_token_and_changes_nothing(app, client, waiting):
    from app_fixtures import ADMIN_EMAIL, ADMIN_PASSWORD

    assert post(client, "/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).status_code == 302
    before = _stored(app)
    for method, path in _each_url(waiting):
        if method != "POST":
            continue
        reply = client.post(path, data=FORM)
        assert reply.status_code == 400, path
        assert "This form has expired or did not come from the widget." in _text(reply), path
        reply = client.post(path, data={**FORM, "csrf_token": "forged"}, headers={"X-CSRFToken": "forged"})
        assert reply.status_code == 400, path
    assert _stored(app) == before
    token = csrf_token(client, "/admin/crm/tokens")  # the htmx header is accepted like the form field
    reply = client.post("/admin/crm/tokens", data={"name": "From htmx"}, headers={"X-CSRFToken": token})
    assert reply.status_code == 200 and "The token “From htmx” is issued." in _text(reply)


# -- The command line ------------------------------------------------------------------------------------------------

@pytest.fixture
def runner(app: Flask):  # noqa: ANN201
    """The app's command line, with the directory's commands added as widget/cli.py adds them."""
    for command in (import_records_command, api_token_command):
        if command.name not in app.cli.commands:
            app.cli.add_command(command)
    return app.test_cli_runner()


def test_it_imports_from_the_command_line_with_the_rules_of_the_page(app, runner, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(ZOHO_CONTACTS, encoding="utf-8")
    result = runner.invoke(args=["import-records", str(path), "--module", "contacts"])
    assert result.exit_code == 0, result.output
    assert "Contacts from contacts.csv: 3 created, 0 updated, 0 unchanged, 0 rows skipped." in result.output
    result = runner.invoke(args=["import-records", str(path), "--module", "Contacts"])
    assert result.exit_code == 0
    assert "0 created, 0 updated, 3 unchanged, 0 rows skipped." in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text("Record Id,Full Name,Email\n1,Ann,ann@example.com\n,Nobody,\n3,Bo,bo at example\n",
                   encoding="utf-8")
    result = runner.invoke(args=["import-records", str(bad), "--module", "Leads"])
    assert result.exit_code == 1
    assert result.output.splitlines()[:3] == [
        "Leads from bad.csv: 1 created, 0 updated, 0 unchanged, 2 rows skipped.",
        "Line 3: the record id is empty (column 'Record Id') (skipped)",
        "Line 4: Email: 'bo at example' is not an e-mail address (skipped)",
    ]
    assert ("Leads", "3") not in _records(app) and ("Leads", "1") in _records(app)


def test_it_imports_a_custom_csv_from_the_command_line_with_map_options(app, runner, tmp_path):
    path = tmp_path / "kunden.csv"
    path.write_bytes(CUSTOM_CSV)
    result = runner.invoke(args=["import-records", str(path), "--module", "Contacts"])
    assert result.exit_code == 1
    assert "the columns cannot be imported as they are; map them with --map FIELD=COLUMN." in result.output
    assert "Record id: Choose the column that holds the CRM's record id." in result.output
    assert "The file's columns: Kundennummer, Vorname, Nachname, E-Mail-Adresse, Firma" in result.output
    assert _records(app) == {}
    result = runner.invoke(args=["import-records", str(path), "--module", "Contacts", "--map", "crm_id=Kundennummer",
                                 "--map", "first_name=Vorname", "--map", "last_name=Nachname",
                                 "--map", "email=e-mail-adresse"])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    assert _records(app)[("Contacts", "K-100")]["emails"] == ["joerg.weiss@example.de"]
    result = runner.invoke(args=["import-records", str(path), "--module", "Contacts", "--map", "crm_id=Nummer"])
    assert result.exit_code == 2
    assert "the file has no column 'Nummer'" in result.output


def test_it_catches_up_once_on_a_burst_of_new_addresses_by_searching_for_them_only(app, sandbox, admin_client):
    """Five imports in a row, each adding a contact: the next sync of a mailbox searches its folders for the five
    addresses (the mail of the history window comes, older mail stays in Exchange) and never walks them again
    from the start; the sync after that has nothing to catch up on."""
    alice = _add_user(app, ALICE)
    with app.app_context():
        db.session.execute(db.delete(FolderSync))
        db.session.commit()
    people = [f"buyer{n}@acme.example" for n in range(5)]
    for days, person in zip((3, 5, 8, 13, 400), people, strict=True):  # the last is past the 30-day window
        when = datetime.now(UTC) - timedelta(days=days)
        props = {"Subject": f"From {person}", "ToRecipients": [Mailbox(ALICE)], "Body": Body("HTML", "<p>Hi</p>")}
        message_defaults(props, Mailbox(person, person), when)
        deliver_message(sandbox.store, props, when)

    def sync() -> tuple[list[str], dict[str, int]]:
        before = dict(sandbox.stats.operations)
        with app.app_context():
            run = run_sync(db.session.get(User, alice))
            assert run.outcome == "ok", run.error
            subjects = sorted(db.session.scalars(db.select(Email.subject).where(Email.user_id == alice)))
        after = dict(sandbox.stats.operations)
        return subjects, {name: after.get(name, 0) - before.get(name, 0) for name in after}

    assert sync()[0] == []
    for n, person in enumerate(people):
        _import(admin_client, f"Record Id,Full Name,Email\n90{n},Buyer {n},{person}\n", "Contacts")
    subjects, calls = sync()
    assert subjects == [f"From {person}" for person in people[:4]]
    assert calls["SyncFolderItems"] == 4  # one page per folder (inbox, sent, calendar, tasks): no full pass
    assert calls["FindItem"] == 2 * 5  # a search per folder and new address
    _, calls = sync()
    assert calls.get("FindItem", 0) == 0 and calls["SyncFolderItems"] == 4
