"""No lockouts: whatever mix of addresses, domains, workers and parallel clients, the widget lets at most
threshold - 1 failed sign-ins per directory account through per window (the sandbox locks at 3 here, and the
widget is told so), then holds its own lock, with one answer for every refused attempt."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
from contoso import PASSWORDS
from flask import Flask
from flask_migrate import upgrade
from server_processes import sandbox_server, widget_server
from web_helpers import post, signed_in

from widget import MIGRATIONS, create_app, settings
from widget.extensions import db
from widget.models import CredentialBudget

VICTIM, VICTIM_PASSWORD = "carol@contoso.com", PASSWORDS["carol@contoso.com"]
# Ways to name Carol's directory account: her address, her DOMAIN\user name in either field, another address with
# the domain (the widget then sends CONTOSO\carol), other cases.
DISGUISES = [
    {"email": "carol@contoso.com", "domain": ""},
    {"email": "carol@anything.example", "domain": "CONTOSO"},
    {"email": "someone@else.example", "domain": "CONTOSO\\carol"},
    {"email": "Carol@Contoso.com", "domain": ""},
    {"email": "carol@contoso.com", "domain": "contoso"},
    {"email": "CAROL@contoso.com", "domain": "CONTOSO\\Carol"},
]


@pytest.fixture
def lockout_3(app: Flask, sandbox) -> Flask:  # noqa: ANN001 - the sandbox fixture
    """The sandbox locks an account at its 3rd failed sign-in, and the widget's administrator said so."""
    sandbox.store.lockout_threshold = 3
    with app.test_request_context():
        settings.save({"lockout_threshold": 3, "lockout_window_minutes": 30})
    return app


def _visible(reply) -> str:  # noqa: ANN001 - a test response
    html = reply.get_data(as_text=True)
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    html = re.sub(r'<input[^>]*name="(email|domain)"[^>]*>', "", html)  # the values typed, shown back
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _failed_logins(sandbox, email: str = VICTIM) -> int:  # noqa: ANN001 - the sandbox fixture
    return sandbox.store.users[email].failed_logins


def test_it_never_lets_any_mix_of_addresses_and_domains_lock_an_account(lockout_3, client, sandbox):
    answers = []
    for round_ in range(3):
        for disguise in DISGUISES:
            reply = post(client, "/signin", {**disguise, "password": f"guess-{round_}"})
            answers.append(reply)
    assert _failed_logins(sandbox) == 2 and not sandbox.store.users[VICTIM].locked
    statuses = [reply.status_code for reply in answers]
    assert statuses[:2] == [401, 401] and set(statuses[2:]) == {429}
    held = {_visible(reply) for reply in answers[2:]}
    assert len(held) == 1, "every refused attempt gets the same answer"
    text = held.pop()
    assert re.search(r"the widget tries no more until \d\d:\d\d UTC \(in 30 minutes\)", text)
    assert all(reply.headers["Retry-After"] for reply in answers[2:])
    # The right password now gets that answer too: the lock tells nothing about the password.
    right = post(client, "/signin", {"email": VICTIM, "password": VICTIM_PASSWORD, "domain": ""})
    assert right.status_code == 429 and _visible(right) == text
    assert _failed_logins(sandbox) == 2 and not sandbox.store.users[VICTIM].locked


def test_it_holds_parallel_clients_on_several_workers_to_the_budget(lockout_3, sandbox):
    # Two workers: two applications on the one database, each with its own memory (Flask-Limiter's included).
    instance = lockout_3.instance_path
    workers = [lockout_3, create_app({"INSTANCE_PATH": instance, "TESTING": True, "WIDGET_AUTO_MIGRATE": False,
                                      "SQLALCHEMY_DATABASE_URI": lockout_3.config["SQLALCHEMY_DATABASE_URI"]})]
    statuses: list[int] = []
    start = threading.Barrier(12)

    def guess(number: int) -> None:
        client = workers[number % 2].test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{number}"  # a botnet: every client its own address
        start.wait()
        for attempt in range(3):
            disguise = DISGUISES[(number + attempt) % len(DISGUISES)]
            statuses.append(post(client, "/signin", {**disguise, "password": f"guess-{number}-{attempt}"}).status_code)

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with workers[1].app_context():
        db.engine.dispose()
    assert len(statuses) == 36
    assert _failed_logins(sandbox) <= 2 and not sandbox.store.users[VICTIM].locked
    assert statuses.count(401) == _failed_logins(sandbox) and statuses.count(429) == 36 - _failed_logins(sandbox)


def test_it_answers_a_right_password_without_a_mailbox_as_it_answers_a_wrong_one(lockout_3, client, sandbox):
    # Bob's password is right, but nobody@contoso.com is no mailbox of his: once an oracle (403 against 401).
    right = post(client, "/signin", {"email": "nobody@contoso.com", "domain": "CONTOSO\\bob",
                                     "password": PASSWORDS["bob@contoso.com"]})
    wrong = post(client, "/signin", {"email": "nobody@contoso.com", "domain": "CONTOSO\\bob", "password": "guess"})
    assert right.status_code == wrong.status_code == 401
    assert _visible(right) == _visible(wrong)
    # Nor does the budget: both count, so the next attempt is held whichever of the two was right.
    held = post(client, "/signin", {"email": "nobody@contoso.com", "domain": "CONTOSO\\bob", "password": "again"})
    assert held.status_code == 429
    assert "This email and password do not match, or this account cannot use the widget." in _visible(wrong)
    # Administrators' addresses are not told apart either.
    admin = post(client, "/signin", {"email": "admin@example.com", "domain": "", "password": "guess"})
    assert admin.status_code == 401 and _visible(admin) == _visible(wrong)


def test_it_lifts_its_lock_when_the_directory_window_has_passed(lockout_3, client, sandbox):
    for attempt in range(3):
        post(client, "/signin", {"email": VICTIM, "domain": "", "password": f"guess-{attempt}"})
    assert _failed_logins(sandbox) == 2
    sandbox.store.users[VICTIM].failed_logins = 0  # the directory's own counter resets after its window
    with lockout_3.app_context():
        row = db.session.get(CredentialBudget, "carol")
        row.last_attempt_at -= timedelta(minutes=30, seconds=1)
        db.session.commit()
    reply = post(client, "/signin", {"email": VICTIM, "domain": "", "password": VICTIM_PASSWORD})
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"


def test_it_lets_a_person_who_mistyped_sign_in_and_start_again(lockout_3, client, sandbox):
    assert post(client, "/signin", {"email": VICTIM, "domain": "", "password": "typo-1"}).status_code == 401
    assert post(client, "/signin", {"email": VICTIM, "domain": "", "password": VICTIM_PASSWORD}).status_code == 302
    assert _failed_logins(sandbox) == 0  # a sign-in Exchange accepts resets the directory's count, and the widget's
    fresh = client.application.test_client()
    for attempt in range(2):  # the whole budget again
        assert post(fresh, "/signin", {"email": VICTIM, "domain": "", "password": f"typo-{attempt}"}).status_code == 401
    assert _failed_logins(sandbox) == 2 and not sandbox.store.users[VICTIM].locked


def test_it_budgets_the_password_popup_and_test_connection_too(lockout_3, admin_client, sandbox):
    carol = signed_in(lockout_3, VICTIM, VICTIM_PASSWORD)
    for attempt in range(3):
        reply = post(carol, "/account/password", {"password": f"new-guess-{attempt}"}, token_from="/account/password")
    assert reply.status_code == 429 and "the widget tries no more until" in reply.get_data(as_text=True)
    assert _failed_logins(sandbox) == 2 and not sandbox.store.users[VICTIM].locked
    for attempt in range(4):
        reply = post(admin_client, "/admin/server/test", {"ews_url": sandbox.url, "ews_auth": "NTLM",
                                                          "test_username": "CONTOSO\\bob",
                                                          "test_password": f"guess-{attempt}"},
                     token_from="/admin/server")
    assert reply.status_code == 429 and "the widget tries no more until" in reply.get_data(as_text=True)
    assert _failed_logins(sandbox, "bob@contoso.com") == 2 and not sandbox.store.users["bob@contoso.com"].locked


def test_it_shows_the_lockout_policy_on_the_server_page(lockout_3, admin_client):
    page = admin_client.get("/admin/server").get_data(as_text=True)
    assert "Lockout threshold of your directory" in page and "Lockout window of your directory (minutes)" in page
    reply = post(admin_client, "/admin/server", {"ews_url": "mail.contoso.com", "ews_auth": "NTLM",
                                                 "lockout_threshold": "1", "lockout_window_minutes": "30"})
    assert reply.status_code == 422 and "Lockout threshold of your directory must be at least 2" in \
        reply.get_data(as_text=True)


def _signin_attempts(base: str, disguise: dict[str, str], password: str, address: str) -> int:
    session = requests.Session()
    session.trust_env = False
    page = session.get(base + "/signin", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = session.post(base + "/signin", data={**disguise, "password": password, "csrf_token": token},
                         headers={"X-Forwarded-For": address}, allow_redirects=False, timeout=60)
    return reply.status_code


def test_it_holds_real_worker_processes_to_the_budget_of_a_sandbox_that_locks_at_3(tmp_path):
    """`flask --app widget sandbox --lockout 3` and two `flask run` workers on one database, 16 parallel clients."""
    with sandbox_server(tmp_path / "sandbox.log", "--port", "0", "--lockout", "3",
                        "--user", f"{VICTIM}:{VICTIM_PASSWORD}") as exchange:
        instance = tmp_path / "instance"
        app = create_app({"INSTANCE_PATH": str(instance), "WIDGET_AUTO_MIGRATE": False})
        with app.app_context():
            upgrade(directory=str(MIGRATIONS))
            with app.test_request_context():
                settings.save({"ews_url": exchange.url, "lockout_threshold": 3})
            db.engine.dispose()
        with widget_server(instance, tmp_path / "one.log") as one, widget_server(instance, tmp_path / "two.log") as two:
            statuses: list[int] = []
            start = threading.Barrier(16)

            def guess(number: int) -> None:
                start.wait()
                for attempt in range(2):
                    disguise = DISGUISES[(number + attempt) % len(DISGUISES)]
                    statuses.append(_signin_attempts((one, two)[number % 2], disguise, f"guess-{number}-{attempt}",
                                                     f"10.1.0.{number}"))

            threads = [threading.Thread(target=guess, args=(number,)) for number in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        stats = exchange.stats()
    assert len(statuses) == 32
    assert stats["failed_logins"].get(VICTIM, 0) <= 2 and stats["locked"] == []
    assert statuses.count(401) == stats["failed_logins"].get(VICTIM, 0)
    assert set(statuses) <= {401, 429}
