"""The JSON API of the CRM's webhooks: batches of upserts and deletes with a bearer token; anything wrong gets an
answer that says what and where, and nothing of that batch is applied; tokens are shown once, stored hashed and
refused once revoked; new addresses re-link past mail."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import post

from widget.crm.commands import api_token_command
from widget.extensions import db
from widget.models import ApiToken, CrmAddress, CrmRecord, FolderSync, User

URL = "/api/crm/records"
LENA = {"module": "Contacts", "id": "4876876000000331001", "name": "Lena Fischer",
        "emails": ["Lena.Fischer@Acme.example", "lena@fischer-home.example", "lena.fischer@acme.example"],
        "account_id": "4876876000000330011"}
ACME = {"module": "Accounts", "id": "4876876000000330011", "name": "Acme Maschinenbau GmbH", "emails": []}
DEAL = {"module": "Deals", "id": "4876876000000500001", "name": "40 seats", "account_id": "4876876000000330011",
        "contact_id": "4876876000000331001"}
LEAD = {"module": "Leads", "id": "4876876000000412001", "name": "Hank Scorpio", "emails": ["hank@globex.example"]}


def _text(reply) -> str:  # noqa: ANN001 - a test response
    text = re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True))
    return " ".join(text.replace("&#39;", "'").replace("&amp;", "&").split())


def _issue(admin_client: FlaskClient, name: str = "Zoho webhooks") -> str:
    """Issue a token on the admin page; the token as the page shows it (once)."""
    reply = post(admin_client, "/admin/crm/tokens", {"name": name}, token_from="/admin/crm/tokens")
    assert reply.status_code == 200
    match = re.search(r'<input type="text" id="new-token" class="mono secret-once" value="([^"]+)"',
                      reply.get_data(as_text=True))
    assert match, _text(reply)
    return match.group(1)


@pytest.fixture
def token(admin_client: FlaskClient) -> str:
    """A token issued by the administrator."""
    return _issue(admin_client)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client of its own, like a CRM's server: no session, no cookie."""
    return app.test_client()


def _send(api: FlaskClient, token: str | None, body: object, *, raw: bytes | None = None, **headers: str):  # noqa: ANN202
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    data = raw if raw is not None else json.dumps(body)
    return api.post(URL, data=data, headers=headers, content_type="application/json")


def _records(app: Flask) -> dict[tuple[str, str], tuple]:
    with app.app_context():
        found = {}
        for record in db.session.scalars(db.select(CrmRecord)):
            addresses = tuple(sorted(db.session.scalars(db.select(CrmAddress.address)
                                                        .where(CrmAddress.record_id == record.id))))
            found[(record.module, record.crm_id)] = (record.name, addresses, record.account_crm_id,
                                                     record.contact_crm_id)
        return found


# -- Batches ---------------------------------------------------------------------------------------------------------

def test_it_upserts_and_deletes_records_in_batches(app, api, token):
    reply = _send(api, token, {"upsert": [LENA, ACME, DEAL, LEAD]})
    assert reply.status_code == 200
    assert reply.get_json() == {"created": 4, "updated": 0, "unchanged": 0, "deleted": 0, "relink": True}
    assert _records(app) == {
        ("Contacts", LENA["id"]): ("Lena Fischer", ("lena.fischer@acme.example", "lena@fischer-home.example"),
                                   ACME["id"], None),
        ("Accounts", ACME["id"]): ("Acme Maschinenbau GmbH", (), None, None),
        ("Deals", DEAL["id"]): ("40 seats", (), ACME["id"], LENA["id"]),
        ("Leads", LEAD["id"]): ("Hank Scorpio", ("hank@globex.example",), None, None),
    }
    assert "Set-Cookie" not in reply.headers

    # The same batch again changes nothing; an upsert gives the whole record (left-out fields become empty).
    assert _send(api, token, {"upsert": [LENA, ACME, DEAL, LEAD]}).get_json() == {
        "created": 0, "updated": 0, "unchanged": 4, "deleted": 0, "relink": False}
    renamed = {"module": "Contacts", "id": LENA["id"], "name": "Lena Fischer-Wolf", "emails": ["lena@wolf.example"]}
    reply = _send(api, token, {"upsert": [renamed], "delete": [{"module": "Leads", "id": LEAD["id"]},
                                                               {"module": "Leads", "id": "never-existed"}]})
    assert reply.get_json() == {"created": 0, "updated": 1, "unchanged": 0, "deleted": 1, "relink": True}
    records = _records(app)
    assert records[("Contacts", LENA["id"])] == ("Lena Fischer-Wolf", ("lena@wolf.example",), None, None)
    assert ("Leads", LEAD["id"]) not in records
    with app.app_context():
        assert set(db.session.scalars(db.select(CrmAddress.address))) == {"lena@wolf.example"}
        assert db.session.scalar(db.select(ApiToken.last_used_at)) > datetime.now(UTC) - timedelta(minutes=1)
    # Whole numbers are ids too (a CRM's ids are often numbers), and an empty batch is fine.
    reply = _send(api, token, {"upsert": [{"module": "Leads", "id": 4876876000000412009, "name": "N"}]})
    assert reply.status_code == 200 and ("Leads", "4876876000000412009") in _records(app)
    assert _send(api, token, {"upsert": [], "delete": []}).get_json()["created"] == 0


def test_it_keeps_folder_syncs_and_makes_authorized_users_due_when_a_batch_adds_an_address(app, api, token):
    later = datetime.now(UTC) + timedelta(minutes=15)
    with app.app_context():
        user = User(email="alice@contoso.com", status="authorized", exchange_password="x", sync_due_at=later)
        db.session.add(user)
        db.session.flush()
        db.session.add(FolderSync(user_id=user.id, folder="inbox", sync_state="S1", pass_number=1, pass_complete=True))
        db.session.commit()

    def state() -> tuple[str | None, datetime | None]:
        with app.app_context():
            return (db.session.scalar(db.select(FolderSync.sync_state)),
                    db.session.scalar(db.select(User.sync_due_at).where(User.email == "alice@contoso.com")))

    assert _send(api, token, {"upsert": [ACME]}).get_json()["relink"] is False  # no address: nothing to re-link
    assert state() == ("S1", later)
    assert _send(api, token, {"upsert": [LEAD]}).get_json()["relink"] is True
    sync_state, due = state()
    assert sync_state == "S1" and due <= datetime.now(UTC)  # a catch-up for the new address, not a full pass


# -- Refusals --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "the body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"", 'the body is empty: send a JSON object such as {"upsert": [...], "delete": [...]}'),
    (b"\xff\xfe{}", "the body is not UTF-8 text"),
    ([LENA], 'the body must be a JSON object such as {"upsert": [...], "delete": [...]}, not a list'),
    ({}, 'the body has neither "upsert" nor "delete"'),
    ({"upserts": [LENA]}, "unknown field 'upserts': the body has \"upsert\" and \"delete\" lists"),
    ({"upsert": LENA}, "upsert: must be a list, not an object"),
    ({"upsert": [LENA, "Lena"]}, "upsert[1]: must be an object, not a text"),
    ({"upsert": [{"id": "1"}]}, "upsert[0].module: missing (one of Contacts, Leads, Accounts, Deals)"),
    ({"upsert": [{**LENA, "module": "Contact"}]},
     "upsert[0].module: 'Contact' is not one of Contacts, Leads, Accounts, Deals"),
    ({"upsert": [{"module": "Leads", "id": " "}]}, "upsert[0].id: missing (the CRM's id of the record)"),
    ({"upsert": [{"module": "Leads", "id": 1.5}]}, "upsert[0].id: must be a text or a whole number"),
    ({"upsert": [{"module": "Leads", "id": "x" * 101}]},
     f"upsert[0].id: {'x' * 20!r}... is longer than 100 characters"),
    ({"upsert": [{"module": "Leads", "id": "4876\u00008"}]},
     "upsert[0].id: must not hold control characters (such as NUL)"),
    ({"upsert": [{**LENA, "name": "Lena\u0000"}]}, "upsert[0].name: must not hold control characters (such as NUL)"),
    ({"delete": [{"module": "Leads", "id": "\u0000"}]}, "delete[0].id: must not hold control characters (such as NUL)"),
    ({"upsert": [{**LENA, "email": "a@b.example"}]},
     "upsert[0]: unknown field 'email' (the fields are module, id, name, emails, account_id, contact_id)"),
    ({"upsert": [{**LENA, "name": 7}]}, "upsert[0].name: must be a text, not a number"),
    ({"upsert": [{**LENA, "emails": "lena@acme.example"}]},
     "upsert[0].emails: must be a list of addresses, not a text"),
    ({"upsert": [ACME, LEAD, LENA, {**LENA, "id": "2", "emails": ["x"]}]},
     "upsert[3].emails[0]: 'x' is not an e-mail address"),
    ({"upsert": [{**LENA, "emails": ["ok@acme.example", "lena@@acme.example"]}]},
     "upsert[0].emails[1]: 'lena@@acme.example' is not an e-mail address"),
    ({"upsert": [{**LENA, "emails": [None]}]}, "upsert[0].emails[0]: must be a text (an e-mail address)"),
    ({"upsert": [{**LEAD, "account_id": "1"}]}, "upsert[0].account_id: Leads records have no account"),
    ({"upsert": [{**LENA, "contact_id": "1"}]}, "upsert[0].contact_id: Contacts records have no contact"),
    ({"upsert": [LENA, ACME, LENA]}, "upsert[2]: Contacts '4876876000000331001' is in upsert[0] already"),
    ({"upsert": [LENA], "delete": [{"module": "Contacts", "id": LENA["id"]}]},
     "delete[0]: Contacts '4876876000000331001' is also upserted, in upsert[0]"),
    ({"delete": [{"module": "Leads"}]}, "delete[0].id: missing (the CRM's id of the record)"),
    ({"delete": [{"module": "Leads", "id": "1", "name": "x"}]},
     "delete[0]: unknown field 'name' (the fields are module, id)"),
])
def test_it_refuses_a_bad_body_with_what_is_wrong_and_where_and_applies_nothing(app, api, token, body, message):
    reply = _send(api, token, None, raw=body) if isinstance(body, bytes) else _send(api, token, body)
    assert reply.status_code == 400
    assert reply.is_json
    assert reply.get_json()["error"] == message
    assert _records(app) == {}


def test_it_lists_every_problem_of_a_batch_and_applies_none_of_its_good_parts(app, api, token):
    assert _send(api, token, {"upsert": [ACME]}).status_code == 200
    before = _records(app)
    reply = _send(api, token, {"upsert": [LEAD, {**LENA, "emails": ["nope"]}, {"module": "Deals"}],
                               "delete": [{"module": "Accounts", "id": ACME["id"]}]})
    assert reply.status_code == 400
    assert reply.get_json()["errors"] == ["upsert[1].emails[0]: 'nope' is not an e-mail address",
                                          "upsert[2].id: missing (the CRM's id of the record)"]
    assert _records(app) == before  # neither the lead nor the delete of the account


def test_it_refuses_a_batch_over_1000_records_or_8_mb(app, api, token):
    upserts = [{"module": "Leads", "id": str(n), "emails": [f"l{n}@example.com"]} for n in range(1000)]
    reply = _send(api, token, {"upsert": upserts[:600], "delete": [{"module": "Leads", "id": "x"}] * 401})
    assert reply.status_code == 413
    assert reply.get_json()["error"] == "the batch holds 1001 records: send at most 1000 per request"
    assert _records(app) == {}
    reply = _send(api, token, {"upsert": [{"module": "Leads", "id": "1", "name": "x" * (9 * 1024 * 1024)}]})
    assert reply.status_code == 413
    assert reply.get_json()["error"] == "the body is larger than 8 MB: send smaller batches"
    reply = _send(api, token, {"upsert": upserts})
    assert reply.status_code == 200 and reply.get_json()["created"] == 1000


@pytest.mark.parametrize(("authorization", "message", "invalid"), [
    (None, "the Authorization header is missing: send Authorization: Bearer <token>", False),
    ("Basic YWRtaW46YWRtaW4=", "the Authorization header must be Bearer <token>", False),
    ("Bearer ", "the Authorization header must be Bearer <token>", False),
    ("Bearer wgt_not-a-token-that-was-ever-issued", "the bearer token is not valid", True),
])
def test_it_refuses_a_request_without_a_valid_token(app, api, token, authorization, message, invalid):
    headers = {"Authorization": authorization} if authorization else {}
    reply = api.post(URL, json={"upsert": [LEAD]}, headers=headers)
    assert reply.status_code == 401
    assert reply.get_json()["error"] == message
    challenge = reply.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is invalid
    assert _records(app) == {}


def test_it_refuses_a_revoked_token(app, api, admin_client, token):
    other = _issue(admin_client, "Second CRM")
    assert _send(api, token, {"upsert": [LEAD]}).status_code == 200
    with app.app_context():
        token_id = db.session.scalar(db.select(ApiToken.id).where(ApiToken.name == "Zoho webhooks"))
    reply = post(admin_client, f"/admin/crm/tokens/{token_id}/revoke", {}, token_from="/admin/crm/tokens")
    assert reply.status_code == 302
    page = _text(admin_client.get("/admin/crm/tokens"))
    assert "The token “Zoho webhooks” is revoked: the API refuses it from now on." in page
    assert re.search(r"Zoho webhooks \S+ \S+ UTC \S+ \S+ UTC Revoked \S+ \S+ UTC", page)
    reply = _send(api, token, {"delete": [{"module": "Leads", "id": LEAD["id"]}]})
    assert reply.status_code == 401
    assert reply.get_json()["error"] == "the bearer token was revoked"
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert ("Leads", LEAD["id"]) in _records(app)
    assert _send(api, other, {"delete": [{"module": "Leads", "id": LEAD["id"]}]}).get_json()["deleted"] == 1


def test_it_shows_a_new_token_once_and_keeps_only_its_hash(app, admin_client):
    page = _text(admin_client.get("/admin/crm/tokens"))
    assert "No tokens yet." in page
    reply = post(admin_client, "/admin/crm/tokens", {"name": "  "}, token_from="/admin/crm/tokens")
    assert reply.status_code == 422
    assert "Give the token a name, e.g. the CRM or webhook that will use it." in _text(reply)
    token = _issue(admin_client)
    assert token.startswith("wgt_") and len(token) > 40
    assert token not in admin_client.get("/admin/crm/tokens").get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken))
        assert row.name == "Zoho webhooks"
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        stored = json.dumps([[str(v) for v in r] for r in db.session.execute(db.select(ApiToken)).all()])
    assert token not in stored


def test_it_needs_no_csrf_token_but_refuses_the_admin_session_alone(app, admin_client, token):
    # The admin's own browser session is no credential for the API: only the bearer token is.
    reply = admin_client.post(URL, json={"upsert": [LEAD]})
    assert reply.status_code == 401
    reply = admin_client.post(URL, json={"upsert": [LEAD]}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200


def test_it_rate_limits_a_client(app, api, token):
    for _ in range(300):
        assert api.post(URL, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    reply = _send(api, token, {"upsert": [LEAD]})
    assert reply.status_code == 429
    assert reply.get_json()["error"] == "too many requests: at most 300 per minute; wait, then send again"
    assert _records(app) == {}


def test_it_issues_a_token_from_the_command_line(app, api):
    app.cli.add_command(api_token_command)
    result = app.test_cli_runner().invoke(args=["api-token", "Nightly sync"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()  # the token alone on standard output, for TOKEN=$(flask ... api-token NAME)
    assert token.startswith("wgt_") and "\n" not in token
    assert "It is shown only this once" in result.stderr
    assert _send(api, token, {"upsert": [LEAD]}).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(ApiToken.name)) == "Nightly sync"
    result = app.test_cli_runner().invoke(args=["api-token", " "])
    assert result.exit_code == 2
    assert "Give the token a name" in result.output
