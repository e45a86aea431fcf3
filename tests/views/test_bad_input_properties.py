"""Bad input, generated: hypothesis posts odd values to every form of the widget and odd JSON to the API, signed in
and not. Whatever comes, the answer is never a 5xx; a refusal is a 4xx that says something; and a refused request
leaves the database exactly as it was.

The forms' fields are read from the widget's own pages (each <form>'s action and input names), so a new form is
fuzzed as soon as a page shows it; a POST route that no page shows a form for is fuzzed with generated field names.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from html.parser import HTMLParser

import pytest
from contoso import PASSWORDS
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from web_helpers import csrf_token, post, signed_in

from widget import settings as widget_settings
from widget.extensions import db, limiter
from widget.models import CrmRecord, User

ALICE = "alice@contoso.com"
# Pages that show the widget's forms, for the field names of each form's action.
FORM_PAGES = ("/signin", "/account/password", "/dashboard", "/admin/server", "/admin/impersonation", "/admin/sync",
              "/admin/users", "/admin/embedding", "/admin/crm/import", "/admin/crm/tokens",
              "/crm/Contacts/C-1/emails/new", "/meetings/new?kind=meeting", "/meetings/new?kind=appointment",
              "/tasks/new", "/sync/history")
# Not fuzzed: signing out ends the session the rest of the run needs; Sync now starts a sync in a thread (its only
# input is the CSRF token, which test_csrf_everywhere covers); the API has its own JSON property below.
SKIPPED = {"auth.signout", "dashboard.sync_now", "api.crm_records", "static"}
# Fields whose value reaches out to a server: only loopback addresses, so that no example waits for DNS.
SERVER_FIELDS = {"ews_url": ["", "http://127.0.0.1:1/EWS/Exchange.asmx", "127.0.0.1:1", "not a url", "ftp://x/",
                             "http://[::1", "javascript:alert(1)", "http://127.0.0.1:1/" + "a" * 3000]}
TRIED: dict[str, int] = defaultdict(int)


class _Forms(HTMLParser):
    """Each form's action and the names of its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, set[str]] = defaultdict(set)
        self._action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._action = (values.get("action") or values.get("hx-post") or "").split("?")[0] or None
        elif tag in ("input", "select", "textarea", "button") and self._action and values.get("name"):
            self.forms[self._action].add(values["name"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None



# The count of failed sign-ins per identity is the bookkeeping that a refused sign-in must leave (it keeps the
# directory from locking the account), not something stored from the request.
_BOOKKEEPING = {"credential_budgets"}


def _fingerprint() -> str:
    """A digest of every row of every table: equal before and after means nothing was stored."""
    digest = hashlib.sha256()
    for table in db.metadata.sorted_tables:
        if table.name in _BOOKKEEPING:
            continue
        rows = db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        digest.update(f"{table.name}:{rows!r}".encode())
    return digest.hexdigest()


def _visible_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def world(app: Flask, sandbox) -> dict:  # noqa: ANN001 - the sandbox fixture
    """Signed-in callers, a record to send from, and the POST routes with the fields their forms carry."""
    user = signed_in(app, ALICE, PASSWORDS[ALICE])
    admin = signed_in(app, "admin@example.com", "Admin-password-1")
    with app.app_context():
        spare = User(email="spare@contoso.com")  # the administrator's user actions act on someone nobody needs
        db.session.add_all([CrmRecord(module="Contacts", crm_id="C-1", name="Lena"), spare])
        db.session.commit()
        spare_id = spare.id
    forms = _Forms()
    for page in FORM_PAGES:
        for client in (user, admin):
            reply = client.get(page)
            if reply.status_code == 200:
                forms.feed(reply.get_data(as_text=True))
    routes = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in SKIPPED:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"user_id": str(spare_id), "module": "Contacts",
                                                       "record_id": "C-1"}.get(m.group(1), "1"), rule.rule)
        fields = sorted(forms.forms.get(path, set()) - {"csrf_token"})
        routes.append((rule.endpoint, path, fields))
    with app.app_context():
        current = widget_settings.load()
        baseline = {field.key: getattr(current, field.key) for field in widget_settings.FIELDS}
    return {"user": user, "admin": admin, "anonymous": app.test_client(), "routes": sorted(routes),
            "settings": baseline}


def _value(field: str) -> st.SearchStrategy[str]:
    if field in SERVER_FIELDS:
        return st.sampled_from(SERVER_FIELDS[field])
    return st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
        st.sampled_from(["", " ", "0", "-1", "99999999999999999999", "1e309", "NaN", "true", "on", "off",
                         "2027-02-30", "2027-03-14T02:30", "25:61", "a@b", "x@y.z", "<script>alert(1)</script>",
                         "' OR 1=1 --", "\x00", "\u202e", "%s%n", "../../etc/passwd", "null", "[]", "{}",
                         "(" * 1200, "a@b.c" + "(" * 1200, "/\r\nSet-Cookie: x=1", "/dashboard\nX: y", "²",
                         "\u212aarol@contoso.com", "carol@contoso.com ", "c" * 330 + "@contoso.com", "9" * 5000]),
        st.text(min_size=2000, max_size=20000).map(lambda s: (s * 3)[:60000]),
    )


@st.composite
def _form(draw: st.DrawFn, fields: list[str]) -> dict[str, str | list[str]]:
    names = fields + ["unexpected_field"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))) if names else []
    data: dict[str, str | list[str]] = {}
    for name in chosen:
        data[name] = draw(st.lists(_value(name), min_size=2, max_size=3)) if draw(st.booleans()) and \
            draw(st.booleans()) else draw(_value(name))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_it_never_fails_or_stores_anything_on_bad_form_input(app, world, data):
    endpoint, path, fields = data.draw(st.sampled_from(world["routes"]), label="route")
    role = data.draw(st.sampled_from(["anonymous", "user", "admin"]), label="role")
    form = data.draw(_form(fields), label="form")
    client: FlaskClient = world[role]
    limiter.reset()  # the rate limits would answer 429 before the input is read
    token = csrf_token(client, "/signin" if role == "anonymous" else "/dashboard")
    files = {}
    if endpoint == "crm_admin.upload":
        from io import BytesIO
        files["file"] = (BytesIO(data.draw(st.binary(max_size=3000), label="file")), "records.csv")
    with app.app_context():
        before = _fingerprint()
    reply = client.post(path, data={**form, **files, "csrf_token": token}, headers=data.draw(
        st.sampled_from([{}, {"HX-Request": "true"}]), label="headers"))
    TRIED[endpoint] += 1
    assert reply.status_code < 500, f"{endpoint} {path} as {role} answered {reply.status_code}"
    if reply.status_code < 400 and role == "admin":
        # An accepted settings form may point the widget at a server that is not there: put the sandbox back, so
        # that the next example's 503 would be the widget's fault, not this example's setting.
        with app.app_context():
            widget_settings.save(world["settings"])
            db.session.commit()
    if 400 <= reply.status_code < 500:
        with app.app_context():
            assert _fingerprint() == before, f"{endpoint} stored something from a refused request"
        redirected = reply.headers.get("HX-Redirect") or reply.headers.get("Location")
        if reply.status_code != 404 and not redirected:  # htmx is sent to sign in by a header
            assert _visible_text(reply.get_data(as_text=True)), f"{endpoint} refused with an empty answer"


def test_it_never_fails_on_a_nul_in_any_field_of_any_form(app, world):
    """Every field of every form at once holding a NUL, which PostgreSQL cannot store or even compare, is refused
    with a page that says so: a sweep, not a draw, so that no form is missed by chance."""
    for endpoint, path, fields in world["routes"]:
        for role in ("anonymous", "user", "admin"):
            limiter.reset()
            client: FlaskClient = world[role]
            token = csrf_token(client, "/signin" if role == "anonymous" else "/dashboard")
            with app.app_context():
                before = _fingerprint()
            form = {name: "a\x00b" for name in fields + ["unexpected_field"]}
            reply = client.post(path, data={**form, "csrf_token": token})
            TRIED[endpoint] += 1
            assert reply.status_code == 400, f"{endpoint} {path} as {role} answered {reply.status_code}"
            assert "A field of the form holds a NUL character" in reply.get_data(as_text=True)
            with app.app_context():
                assert _fingerprint() == before, f"{endpoint} stored something from a refused request"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=5), max_leaves=30)
_RECORD = st.fixed_dictionaries({}, optional={
    "module": st.sampled_from(["Contacts", "Leads", "Accounts", "Deals", "contacts", "", "Users"]) | _JSON,
    "id": st.text(max_size=120) | st.integers() | _JSON,
    "name": st.text(max_size=400) | _JSON,
    "emails": st.lists(st.emails() | st.text(max_size=30), max_size=4) | _JSON,
    "account_id": st.text(max_size=20) | st.none(),
    "contact_id": st.text(max_size=20) | st.none(),
})
_BATCH = st.fixed_dictionaries({}, optional={"upsert": st.lists(_RECORD, max_size=4) | _JSON,
                                             "delete": st.lists(_RECORD, max_size=3) | _JSON}) | _JSON


@pytest.fixture
def bearer(app: Flask, world: dict) -> str:
    """A token issued on the administrator's page."""
    reply = post(world["admin"], "/admin/crm/tokens", {"name": "fuzz"}, token_from="/admin/crm/tokens")
    match = re.search(r'id="new-token" class="mono secret-once" value="([^"]+)"', reply.get_data(as_text=True))
    assert match
    return match.group(1)


# Bodies that once answered 500: a parser's recursion and Python's limit on converting long integers.
_HOSTILE_JSON = st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"upsert": [' * 30_000,
                                 b'{"upsert": ' + b"9" * 5000 + b"}",
                                 b'{"upsert": [{"module": "Contacts", "id": ' + b"1" * 5000 + b"}]}"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_BATCH, raw=st.none() | st.binary(max_size=200) | _HOSTILE_JSON, with_token=st.booleans())
def test_it_never_fails_or_half_applies_a_bad_api_batch(app, bearer, body, raw, with_token):
    api = app.test_client()
    limiter.reset()
    payload = raw if raw is not None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {bearer}"} if with_token else {}
    with app.app_context():
        before = _fingerprint()
        records_before = db.session.scalar(text("SELECT count(*) FROM crm_records"))
    reply = api.post("/api/crm/records", data=payload, headers={**headers, "Content-Type": "application/json"})
    TRIED["api.crm_records"] += 1
    assert reply.status_code < 500
    if reply.status_code >= 400:
        assert reply.get_json()["error"], "a refusal names what is wrong"
        with app.app_context():
            assert _fingerprint() == before
    else:
        counts = reply.get_json()
        with app.app_context():
            records_after = db.session.scalar(text("SELECT count(*) FROM crm_records"))
        assert records_after == records_before + counts["created"] - counts["deleted"]


def test_it_tried_every_form(world):
    """The suite reaches every POST route that takes input (a report for the closing note, and a guard against a
    form that the generator never reaches)."""
    fuzzed = {endpoint for endpoint, _, _ in world["routes"]}
    assert {"auth.signin", "account.password", "admin.server", "admin.sync", "emails.send",
            "crm_admin.upload"} <= fuzzed
    print(f"bad-input routes fuzzed: {len(fuzzed)} + the JSON API; inputs tried so far in this process: "  # noqa: T201
          f"{sum(TRIED.values())} over {len(TRIED)} routes")


_PARAMS = ["q", "page", "kind", "date", "start", "end", "attendees", "attendee", "duration", "all_day", "module",
           "record", "per_page", "tz", "user", "scheduled", "task", "email", "add_attendees"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_it_never_fails_on_odd_query_strings_or_path_parts(app, world, data):
    rules = sorted(rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods and rule.endpoint not in ("static", "auth.launch_view"))
    rule = data.draw(st.sampled_from(rules), label="rule")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: data.draw(
        st.sampled_from(["Contacts", "Deals", "C-1", "0", "-1", "99999999999999999999", "%00", "..", "x" * 300]),
        label=m.group(1)), rule)
    params = data.draw(st.dictionaries(st.sampled_from(_PARAMS), _value("q"), max_size=5), label="params")
    role = data.draw(st.sampled_from(["anonymous", "user", "admin"]), label="role")
    limiter.reset()
    with app.app_context():
        before = _fingerprint()
    reply = world[role].get(path, query_string=params, headers=data.draw(
        st.sampled_from([{}, {"HX-Request": "true"}]), label="headers"))
    TRIED[f"GET {rule}"] += 1
    assert reply.status_code < 500, f"GET {path} {params} as {role} answered {reply.status_code}"
    if reply.status_code >= 400:
        with app.app_context():
            assert _fingerprint() == before


def test_it_refuses_the_shapes_that_once_answered_500(app, world):
    """The exact inputs that answered 500 before: each is now a 4xx that says something, or a page."""
    from widget import launch

    limiter.reset()
    anonymous, user = world["anonymous"], world["user"]
    with app.test_request_context():
        widget_settings.save({"launch_secret": "s" * 32})
    for token in (launch.sign("s" * 32, ALICE, nonce="n" * 101), launch.sign("s" * 32, "a" * 321 + "@contoso.com")):
        reply = anonymous.get(f"/launch?token={token}")
        assert reply.status_code == 400 and "Cannot open the widget" in reply.get_data(as_text=True)
    for query in ("scheduled=²", "task=²", "scheduled=99999999999999999999", "task=-1"):
        assert user.get(f"/dashboard?{query}").status_code == 200, query
    for path in ("/sync/history?page=99999999999999999999", "/admin/crm?page=" + "9" * 5000):
        assert world["admin"].get(path).status_code == 200, path
    reply = post(anonymous, "/signin", {"email": "admin@example.com", "password": "Admin-password-1", "domain": "",
                                        "next": "/dashboard\r\nSet-Cookie: planted=1"})
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"
    assert "planted" not in str(reply.headers)
    reply = post(user, "/meetings/new?kind=meeting", {"add_attendees": "(" * 1200, "subject": "x"},
                 token_from="/dashboard")
    assert reply.status_code in (200, 422)
    reply = post(world["admin"], "/admin/sync", {"default_time_zone": "c" * 330, "sync_emails": "off"},
                 token_from="/admin/sync")
    assert reply.status_code == 422 and "is not a time zone name" in reply.get_data(as_text=True)
    big = b"email=" + b"a" * (16 * 1024 * 1024)
    reply = anonymous.post("/signin", data=big, content_type="application/x-www-form-urlencoded")
    assert reply.status_code == 413 and "larger than the 1024 KB the widget takes" in reply.get_data(as_text=True)


def test_it_searches_people_for_an_impersonated_user_before_anything_asked_the_server_its_version(app, sandbox):
    """A fresh process: nothing has asked this server its version yet when an impersonated user types a name."""
    from widget import launch

    with app.test_request_context():
        widget_settings.save({"launch_secret": "s" * 32, "impersonation": True, "service_username": "svc-crm",
                              "service_domain": "CONTOSO", "service_password": PASSWORDS["svc-crm@contoso.com"]})
    with app.app_context():
        db.session.add(User(email="bob@contoso.com"))
        db.session.commit()
    bob = app.test_client()
    assert bob.get(f"/launch?token={launch.sign('s' * 32, 'bob@contoso.com')}").status_code == 302
    reply = bob.get("/meetings/people?q=ali", headers={"HX-Request": "true"})
    assert reply.status_code == 200 and "alice@contoso.com" in reply.get_data(as_text=True)
