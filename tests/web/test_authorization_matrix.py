"""The authorization matrix: every URL of the widget × anonymous, a user, another user, an administrator and an API
token, each answer asserted, and the security headers of every one of those answers.

The table below names, for each endpoint, who may use it and what an allowed caller gets for a plain request (an
empty form: a 4xx that says what is missing is the right answer there). Everyone else gets the refusal of their
role: anonymous visitors and API tokens are sent to sign in (a bearer token is no session), users get 403 on the
administrator's pages, and another user's objects answer 404, as an id that does not exist. A new route of the
widget fails this test until it has its line here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from contoso import PASSWORDS
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token, post, signed_in
from werkzeug.test import TestResponse

from widget.extensions import db, limiter
from widget.models import ApiToken, CrmRecord, Email, User
from widget.sync.calendar_actions import TaskDraft, create_task

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
SECRETS = {**PASSWORDS, "the administrator": "Admin-password-1"}
ROLES = ("anonymous", "user", "other_user", "admin", "api_token")


@dataclass(frozen=True)
class Access:
    """Who may use an endpoint ("public", "signed_in", "owner", "admin" or "api") and what an allowed caller gets
    per method."""

    who: str
    allowed: dict[str, int | str]
    as_admin: int | None = None  # what an administrator gets where that differs (they have no mailbox of their own)


PUBLIC, SIGNED_IN, OWNER, ADMIN, API = "public", "signed_in", "owner", "admin", "api"
MATRIX: dict[str, Access] = {
    "health.healthz": Access(PUBLIC, {"GET": 200}),
    "static": Access(PUBLIC, {"GET": 200}),
    "auth.signin": Access(PUBLIC, {"GET": 200, "POST": 422}),
    "auth.launch_view": Access(PUBLIC, {"GET": 400}),  # no token: refused, whoever asks
    "auth.setup": Access(PUBLIC, {"GET": 404, "POST": 404}),  # an administrator exists: setup is gone
    "auth.signout": Access(SIGNED_IN, {"POST": "signin"}),
    "dashboard.index": Access(SIGNED_IN, {"GET": 200}),
    "dashboard.sync_now": Access(SIGNED_IN, {"POST": 200}, as_admin=409),  # "Authorize ... first"
    "dashboard.sync_status": Access(SIGNED_IN, {"GET": 200}),
    "history.index": Access(SIGNED_IN, {"GET": 200}),
    "account.password": Access(SIGNED_IN, {"GET": 200, "POST": 422}),
    "emails.related_list": Access(SIGNED_IN, {"GET": 200}),
    "emails.compose": Access(SIGNED_IN, {"GET": 200}),
    "emails.send": Access(SIGNED_IN, {"POST": 422}),
    "emails.show": Access(OWNER, {"GET": 200}),
    "emails.body": Access(OWNER, {"GET": 200}),
    "dashboard.upcoming": Access(SIGNED_IN, {"GET": 200}),
    "dashboard.tasks": Access(SIGNED_IN, {"GET": 200}),
    "dashboard.time_zone": Access(SIGNED_IN, {"POST": 422}),  # no zone chosen
    "meetings.new": Access(SIGNED_IN, {"GET": 200}),
    "meetings.schedule": Access(SIGNED_IN, {"POST": 422}),  # an empty form: each field's error
    "meetings.availability": Access(SIGNED_IN, {"GET": 422}),  # no start: nothing to show
    "meetings.people": Access(SIGNED_IN, {"GET": 200}),
    "meetings.related_list": Access(SIGNED_IN, {"GET": 200}),
    "tasks.new": Access(SIGNED_IN, {"GET": 200}),
    "tasks.create": Access(SIGNED_IN, {"POST": 422}),
    "tasks.complete": Access(OWNER, {"POST": 303}),  # done, back to the dashboard (a form without JavaScript)
    "admin.index": Access(ADMIN, {"GET": 200}),
    "admin.server": Access(ADMIN, {"GET": 200, "POST": 422}),
    "admin.server_test": Access(ADMIN, {"POST": 422}),
    "admin.impersonation": Access(ADMIN, {"GET": 200, "POST": 302}),
    "admin.impersonation_test": Access(ADMIN, {"POST": 422}),
    "admin.sync": Access(ADMIN, {"GET": 200, "POST": 422}),
    "admin.users": Access(ADMIN, {"GET": 200}),
    "admin.disable_user": Access(ADMIN, {"POST": 302}),
    "admin.delete_user": Access(ADMIN, {"GET": 200, "POST": 302}),
    "admin.enable_user": Access(ADMIN, {"POST": 302}),
    "admin.embedding": Access(ADMIN, {"GET": 200, "POST": 302}),
    "admin.launch_secret": Access(ADMIN, {"POST": 200}),
    "crm_admin.records": Access(ADMIN, {"GET": 200}),
    "crm_admin.upload_form": Access(ADMIN, {"GET": 200}),
    "crm_admin.upload": Access(ADMIN, {"POST": 422}),
    "crm_admin.mapping": Access(ADMIN, {"GET": 404}),  # no such upload
    "crm_admin.import_upload": Access(ADMIN, {"POST": 404}),
    "crm_admin.cancel_import": Access(ADMIN, {"POST": 302}),
    "crm_admin.tokens_page": Access(ADMIN, {"GET": 200}),
    "crm_admin.create_token": Access(ADMIN, {"POST": 422}),
    "crm_admin.revoke_token": Access(ADMIN, {"POST": 302}),
    "api.crm_records": Access(API, {"POST": 400}),  # an empty body: 400 that says what is wrong
}
# A sync replaces the user's stored mail with their mailbox's, deleting a user takes the spare one away, and signing out
# (or opening a launch link, accepted or not) ends the session: these come last.
LAST = ("dashboard.sync_now", "admin.delete_user", "auth.signout", "auth.launch_view")



@pytest.fixture
def callers(app: Flask, sandbox) -> dict[str, FlaskClient]:  # noqa: ANN001 - the sandbox fixture
    """A client per role; the API token's client carries the bearer token on every request and no session."""
    clients = {
        "anonymous": app.test_client(),
        "user": signed_in(app, ALICE, PASSWORDS[ALICE]),
        "other_user": signed_in(app, BOB, PASSWORDS[BOB]),
        "admin": signed_in(app, "admin@example.com", "Admin-password-1"),
    }
    admin = clients["admin"]
    reply = post(admin, "/admin/crm/tokens", {"name": "matrix"}, token_from="/admin/crm/tokens")
    token = re.search(r'id="new-token" class="mono secret-once" value="([^"]+)"', reply.get_data(as_text=True))
    assert token
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token.group(1)}"
    clients["api_token"] = api
    return clients


@pytest.fixture
def placeholders(app: Flask, callers: dict[str, FlaskClient]) -> dict[str, str]:
    """Real ids for the URLs' placeholders: the user's (alice's) email and record, and throwaway objects for the
    administrator's actions (a user nobody signs in as, a token nobody uses)."""
    with app.app_context():
        alice = db.session.scalar(db.select(User).where(User.email == ALICE))
        email = Email(user_id=alice.id, item_id="matrix-1", folder="inbox", subject="Quarterly numbers",
                      received_at=datetime.now(UTC), body_text="Hello", body_fetched=True)
        spare = User(email="spare@contoso.com")
        spare_token = ApiToken(name="spare", token_sha256="0" * 64)
        task = create_task(alice, TaskDraft(subject="Call Lena back", due=None, reminder_at=None, notes=""))
        db.session.add_all([email, spare, spare_token,
                            CrmRecord(module="Contacts", crm_id="C-1", name="Lena")])
        db.session.commit()
        return {"email_id": str(email.id), "user_id": str(spare.id), "token_id": str(spare_token.id),
                "task_id": str(task.id),
                "module": "Contacts", "record_id": "C-1", "upload_id": "f" * 32, "filename": "css/widget.css"}


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every route, signing out last."""
    routes = [(rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
              for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(routes, key=lambda route: (LAST.index(route[0]) if route[0] in LAST else -1, route[0], route[1]))


def _expected(access: Access, method: str, role: str) -> int | str:
    """The answer `role` should get: a status, or "signin" for a redirect to the sign-in page."""
    allowed = access.allowed[method]
    if access.who == PUBLIC:
        return allowed
    if access.who == API:
        return allowed if role == "api_token" else 401
    if role in ("anonymous", "api_token"):
        return "signin"
    if access.who == ADMIN:
        return allowed if role == "admin" else 403
    if role == "admin" and access.as_admin is not None:
        return access.as_admin
    if access.who == OWNER:
        return allowed if role == "user" else 404
    return allowed


def _header_problems(reply: TestResponse) -> list[str]:
    """What is wrong with an answer's security headers and cookies, and any secret it shows."""
    problems = []
    policy = reply.headers.get("Content-Security-Policy", "")
    if "frame-ancestors" not in policy or "script-src 'self'" not in policy and "default-src 'none'" not in policy:
        problems.append(f"CSP {policy!r}")
    if reply.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if "X-Frame-Options" in reply.headers:
        problems.append("X-Frame-Options (it cannot name the CRM's origins; frame-ancestors does)")
    for cookie in reply.headers.getlist("Set-Cookie"):
        if "HttpOnly" not in cookie or "SameSite=" not in cookie:
            problems.append(f"cookie {cookie.split('=', 1)[0]} without HttpOnly or SameSite")
    body = reply.get_data(as_text=True)
    problems += [f"shows a password of {who}" for who, secret in SECRETS.items() if secret in body]
    return problems


def _answer(client: FlaskClient, method: str, path: str, role: str, problems: list[str]) -> int | str:
    limiter.reset()  # every caller shares one address here: the sign-in rate limit is not what is tested
    if method == "GET":
        reply = client.get(path)
    else:
        # A real form's CSRF token, so that the answer is about who asks, not about the token.
        token = csrf_token(client, "/signin" if role in ("anonymous", "api_token") else "/dashboard")
        reply = client.post(path, data={"csrf_token": token})
    problems += [f"{method} {path} as {role}: {problem}" for problem in _header_problems(reply)]
    if reply.status_code == 302 and reply.headers["Location"].split("?")[0].endswith("/signin"):
        return "signin"
    return reply.status_code


def _wait_for_background_syncs(client: FlaskClient) -> None:
    """Sync now starts a sync in a thread: let it finish before the test's database goes away."""
    deadline = time.monotonic() + 30
    while "Syncing" in client.get("/sync-now/status").get_data(as_text=True):
        assert time.monotonic() < deadline, "the sync started by Sync now did not finish"
        time.sleep(0.1)


def test_it_answers_every_url_for_every_role_as_the_matrix_says(app, callers, placeholders):
    routes = _routes(app)
    unlisted = sorted({endpoint for endpoint, _, _ in routes} - set(MATRIX))
    assert not unlisted, f"routes without a line in the authorization matrix: {unlisted}"
    wrong: list[str] = []
    header_problems: list[str] = []
    checked = 0
    for endpoint, method, rule in routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: placeholders[match.group(1)], rule)
        for role in ROLES:
            expected = _expected(MATRIX[endpoint], method, role)
            answer = _answer(callers[role], method, path, role, header_problems)
            checked += 1
            if answer != expected:
                wrong.append(f"{method} {path} as {role}: {answer}, expected {expected}")
        if endpoint == "dashboard.sync_now":
            for role in ("user", "other_user", "admin"):
                _wait_for_background_syncs(callers[role])
    assert not wrong, "\n".join(wrong)
    assert not header_problems, "\n".join(header_problems)
    assert checked >= 5 * len(MATRIX)
    print(f"authorization matrix: {checked} URL × role answers checked")  # noqa: T201 - for the closing note


def test_it_shows_items_marked_private_to_their_owner_alone_whatever_the_visibility(app, callers):
    """The Private rows: bob's mail and meeting with a CRM contact, one of each marked Private in Outlook, with the
    administrator's team-wide visibility on. The owner sees both; a colleague and the administrator see only the
    ones not marked private."""
    from widget import settings
    from widget.models import CalendarAttendee, CalendarItem, CrmAddress, EmailAddress

    lena = "lena.fischer@acme.example"
    with app.test_request_context():
        settings.save({"email_visibility": "team"})
        bob = db.session.scalar(db.select(User).where(User.email == BOB))
        record = CrmRecord(module="Contacts", crm_id="C-7", name="Lena Fischer")
        db.session.add(record)
        db.session.flush()
        db.session.add(CrmAddress(record_id=record.id, address=lena))
        ids = {}
        for subject, private in (("Open offer", False), ("Salary talk", True)):
            email = Email(user_id=bob.id, item_id=f"bob-{private}", folder="inbox", subject=subject,
                          sender_address=lena, received_at=datetime.now(UTC), body_text="Hello", body_fetched=True,
                          is_private=private)
            meeting = CalendarItem(user_id=bob.id, item_id=f"bob-meeting-{private}", subject=f"Meeting: {subject}",
                                   start_at=datetime.now(UTC), end_at=datetime.now(UTC), organizer_address=BOB,
                                   kind="meeting", attendees=[[lena, "Lena", "unknown"]], is_private=private)
            db.session.add_all([email, meeting])
            db.session.flush()
            db.session.add_all([EmailAddress(email_id=email.id, address=lena, role="from"),
                                CalendarAttendee(calendar_item_id=meeting.id, address=lena)])
            ids[private] = email.id
        db.session.commit()

    seen = {}
    for role in ("other_user", "user", "admin"):  # bob (the owner), alice (a colleague), the administrator
        client = callers[role]
        emails = client.get("/crm/Contacts/C-7/emails").get_data(as_text=True)
        meetings = client.get("/crm/Contacts/C-7/meetings").get_data(as_text=True)
        seen[role] = {
            "listed": {s for s in ("Open offer", "Salary talk") if s in emails},
            "meetings": {s for s in ("Open offer", "Salary talk") if f"Meeting: {s}" in meetings},
            "opens": {private: client.get(f"/emails/{ids[private]}").status_code for private in (False, True)},
        }
    assert seen["other_user"] == {"listed": {"Open offer", "Salary talk"}, "meetings": {"Open offer", "Salary talk"},
                                  "opens": {False: 200, True: 200}}
    for role in ("user", "admin"):
        assert seen[role]["listed"] == {"Open offer"} and seen[role]["meetings"] == {"Open offer"}, role
        assert seen[role]["opens"] == {False: 200, True: 404}, role
