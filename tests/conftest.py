"""Fixtures shared by the whole suite: the Exchange sandbox, exchangelib accounts on it, schema validation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from contoso import EXTRA_SECRETS, PASSWORDS, make_store
from ews_schema import SchemaValidator, schema_dir, session_validator, watch_schema
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials, FailFast
from exchangelib.protocol import BaseProtocol, close_connections
from log_watch import LogCollector, leaks, secret_forms

from widget.exchange.logs import keep_secrets_out_of_exchangelib_logs
from widget.sandbox import Sandbox

_LOGS = LogCollector()


def pytest_configure(config: pytest.Config) -> None:
    # Every logger at DEBUG, into one collector: the run ends by proving that no password reached a log.
    # The widget's redaction of exchangelib's logs applies to the whole process, as it does in production.
    keep_secrets_out_of_exchangelib_logs()
    root = logging.getLogger()
    root.addHandler(_LOGS)
    root.setLevel(logging.DEBUG)


def _watched_secrets() -> set[str]:
    logins = [*PASSWORDS, *(email.split("@")[0] for email in PASSWORDS), "CONTOSO\\alice", "CONTOSO\\bob"]
    return secret_forms([*PASSWORDS.values(), *EXTRA_SECRETS], logins)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = leaks(_LOGS.texts, _watched_secrets())
    session.config.stash[_LEAKS] = found
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LEAKS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook
    found = config.stash.get(_LEAKS, [])
    terminalreporter.write_line(f"Logs: {len(_LOGS.texts)} records captured, {len(found)} with a password")
    for text in found[:10]:
        terminalreporter.write_line(f"  password in a log: {text}", red=True)
    validator = session_validator()
    if validator is None:
        terminalreporter.write_sep(
            "!", f"EWS SCHEMA NOT FOUND at {schema_dir()}: SOAP documents were NOT validated", red=True, bold=True
        )
        return
    terminalreporter.write_line(
        f"EWS schema: {validator.checked} SOAP parts validated, {len(validator.failures)} invalid"
    )


@pytest.fixture
def schema_validator() -> SchemaValidator:
    """The session's validator; fails clearly when the schema folder is missing."""
    validator = session_validator()
    if validator is None:
        pytest.fail(f"The EWS schema is missing: expected it at {schema_dir()} (or set WIDGET_EWS_SCHEMA_DIR)")
    return validator


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A running sandbox on loopback whose traffic is validated against the EWS schema."""
    box = Sandbox(make_store()).start()
    check = watch_schema(box)
    yield box
    close_connections()
    box.stop()
    check()


AccountFactory = Callable[..., Account]


@pytest.fixture
def account(sandbox: Sandbox) -> AccountFactory:
    """Build exchangelib accounts on the sandbox: account("bob@contoso.com", access=IMPERSONATION, auth=BASIC)."""

    def build(
        email: str = "alice@contoso.com",
        *,
        access: str = DELEGATE,
        auth: str | None = NTLM,
        username: str | None = None,
        password: str | None = None,
        retry_policy=None,  # noqa: ANN001 - an exchangelib RetryPolicy
    ) -> Account:
        if access == IMPERSONATION:
            username = username or "svc-crm@contoso.com"
            password = password or PASSWORDS["svc-crm@contoso.com"]
        config = Configuration(
            service_endpoint=sandbox.url,
            credentials=Credentials(username or email, password or PASSWORDS[email]),
            auth_type=auth,
            retry_policy=retry_policy or FailFast(),
        )
        return Account(email, config=config, autodiscover=False, access_type=access)

    return build


@pytest.fixture(
    params=[(DELEGATE, NTLM), (DELEGATE, BASIC), (IMPERSONATION, NTLM), (IMPERSONATION, BASIC)],
    ids=["delegate-ntlm", "delegate-basic", "impersonation-ntlm", "impersonation-basic"],
)
def any_account(request: pytest.FixtureRequest, account: AccountFactory) -> AccountFactory:
    """Like `account`, once per access type and auth type."""
    access, auth = request.param

    def build(email: str = "alice@contoso.com") -> Account:
        return account(email, access=access, auth=auth)

    return build


# exchangelib keeps protocol objects (with their connection pools) in a process-wide cache.
BaseProtocol.USERAGENT = "ExchangeWidgetTests"
