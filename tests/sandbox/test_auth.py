"""Authentication: NTLM and Basic, discovery with auth_type=None and version=None, lockout, impersonation."""

from __future__ import annotations

import pytest
import requests
from contoso import PASSWORDS, make_store
from ews_schema import watch_schema
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials, FailFast
from exchangelib.errors import ErrorImpersonateUserDenied, ErrorNonExistentMailbox, UnauthorizedError

from widget.sandbox import Sandbox


def test_it_lets_exchangelib_discover_auth_type_and_version(sandbox):
    config = Configuration(
        service_endpoint=sandbox.url,
        credentials=Credentials("alice@contoso.com", PASSWORDS["alice@contoso.com"]),
        auth_type=None,
        version=None,
        retry_policy=FailFast(),
    )
    alice = Account("alice@contoso.com", config=config, autodiscover=False, access_type=DELEGATE)
    assert alice.inbox.name == "Inbox"
    assert config.auth_type == NTLM
    assert alice.version.build.major_version == 15 and alice.version.build.minor_version == 1
    assert alice.version.api_version == "Exchange2016"
    assert "Exchange Server 2016" in alice.version.fullname


def test_it_offers_basic_when_only_basic_is_enabled():
    box = Sandbox(make_store(), auth_schemes=("Basic",)).start()
    check_schema = watch_schema(box)
    try:
        config = Configuration(
            service_endpoint=box.url,
            credentials=Credentials("bob@contoso.com", PASSWORDS["bob@contoso.com"]),
            auth_type=None,
            version=None,
            retry_policy=FailFast(),
        )
        bob = Account("bob@contoso.com", config=config, autodiscover=False, access_type=DELEGATE)
        assert bob.inbox.total_count == 0
        assert config.auth_type == BASIC
    finally:
        box.stop()
    check_schema()


def test_it_names_the_enabled_schemes_in_its_challenge(sandbox):
    reply = requests.post(sandbox.url, data=b"<x/>", timeout=5)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == 'NTLM, Basic realm="sandbox"'


@pytest.mark.parametrize("auth", [NTLM, BASIC])
@pytest.mark.parametrize("login", ["CONTOSO\\alice", "alice@contoso.com"])
def test_it_accepts_domain_and_email_style_user_names(account, auth, login):
    alice = account("alice@contoso.com", auth=auth, username=login)
    assert alice.root.tois.name == "Top of Information Store"


@pytest.mark.parametrize("auth", [NTLM, BASIC])
def test_it_rejects_a_wrong_password_and_counts_the_failure(sandbox, account, auth):
    with pytest.raises(UnauthorizedError):
        account("alice@contoso.com", auth=auth, password="wrong").inbox.total_count  # noqa: B018
    assert sandbox.store.users["alice@contoso.com"].failed_logins == 1
    stats = requests.get(f"{sandbox.base_url}/sandbox/stats", timeout=5).json()
    assert stats["failed_logins"] == {"alice@contoso.com": 1}


def test_it_locks_an_account_after_repeated_failures_as_active_directory_does(sandbox, account):
    for _ in range(5):
        with pytest.raises(UnauthorizedError):
            account("carol@contoso.com", auth=BASIC, password="nope").inbox.total_count  # noqa: B018
    assert sandbox.store.users["carol@contoso.com"].locked
    # Even the right password is refused now, with the lockout message.
    with pytest.raises(UnauthorizedError, match="locked out"):
        account("carol@contoso.com", auth=NTLM).inbox.total_count  # noqa: B018
    assert requests.get(f"{sandbox.base_url}/sandbox/stats", timeout=5).json()["locked"] == ["carol@contoso.com"]


def test_it_lets_the_service_account_act_for_a_user(sandbox, account):
    bob = account("bob@contoso.com", access=IMPERSONATION)
    assert bob.inbox.total_count == 0
    assert sandbox.stats.by_mailbox_operation[("bob@contoso.com", "GetFolder")] >= 1
    assert sandbox.stats.by_mailbox_operation[("svc-crm@contoso.com", "GetFolder")] == 0


def test_it_refuses_impersonation_by_an_ordinary_user(account):
    carol_as_alice = account(
        "carol@contoso.com", access=IMPERSONATION, username="alice@contoso.com", password=PASSWORDS["alice@contoso.com"]
    )
    with pytest.raises(ErrorImpersonateUserDenied):
        carol_as_alice.inbox.total_count  # noqa: B018


def test_it_refuses_impersonation_of_an_unknown_mailbox(account):
    with pytest.raises(ErrorNonExistentMailbox):
        account("nobody@contoso.com", access=IMPERSONATION).inbox.total_count  # noqa: B018


def test_it_answers_an_unsupported_server_version_as_exchange_does(sandbox, schema_validator):
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        '<s:Header><t:RequestServerVersion Version="Exchange2019"/></s:Header>'
        "<s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></s:Body></s:Envelope>'
    )
    before = len(schema_validator.failures)
    reply = requests.post(
        sandbox.url,
        data=envelope.encode(),
        auth=("alice@contoso.com", PASSWORDS["alice@contoso.com"]),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=5,
    )
    assert reply.status_code == 500
    assert b"<faultcode" in reply.content and b"a:ErrorInvalidServerVersion" in reply.content
    assert b"ServerVersionInfo" in reply.content
    # The request itself was invalid against the schema, and the validator saw it: take that expected failure back.
    assert any("Exchange2019" in failure for failure in schema_validator.failures[before:])
    del schema_validator.failures[before:]


@pytest.mark.parametrize("auth", [NTLM, BASIC])
def test_it_accepts_passwords_with_colons_and_odd_characters(sandbox, account, auth):
    sandbox.store.set_password("bob@contoso.com", "p:ss\\wörd:1")
    bob = account("bob@contoso.com", auth=auth, password="p:ss\\wörd:1")
    assert bob.inbox.name == "Inbox"
