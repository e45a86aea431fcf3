"""Fixtures shared by the whole suite: the Exchange sandbox, exchangelib accounts on it, schema validation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from contoso import EXTRA_SECRETS, PASSWORDS, make_store
from databases import migrate_sqlite_template
from ews_schema import SchemaValidator, schema_available, schema_dir, session_validator, watch_schema
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials, FailFast
from exchangelib.protocol import BaseProtocol, close_connections
from graph_schema import graph_schema_available, graph_schema_dir, graph_session_checker
from log_watch import LogCollector, leaks, secret_forms

from widget.exchange.ews.logs import keep_secrets_out_of_exchangelib_logs
from widget.sandbox import Sandbox

# The widget app fixtures (app, client, make_app, ...) for the tests of views, sync and crm.
pytest_plugins = ["app_fixtures"]

_LOGS = LogCollector()
# What a pytest-xdist worker reports to the controller, which adds up the workers' checks (pytest_testnodedown).
_WORKER_CHECKS = "exchange_widget_checks"


@dataclass
class RunChecks:
    """The run's checks of the logs, of the SOAP traffic and of the Graph JSON bodies, for one process or added up
    over the workers."""

    log_records: int = 0
    leaks: list[str] = field(default_factory=list)
    soap_checked: int = 0
    soap_invalid: int = 0
    graph_checked: int = 0
    graph_invalid: int = 0

    def add(self, other: RunChecks) -> None:
        """Count `other`'s records, leaks, SOAP parts and JSON bodies too."""
        self.log_records += other.log_records
        self.leaks += other.leaks
        self.soap_checked += other.soap_checked
        self.soap_invalid += other.soap_invalid
        self.graph_checked += other.graph_checked
        self.graph_invalid += other.graph_invalid


_CHECKS = pytest.StashKey[RunChecks]()


def pytest_configure(config: pytest.Config) -> None:
    # Every logger at DEBUG, into one collector: the run ends by proving that no password reached a log.
    # The widget's redaction of exchangelib's logs applies to the whole process, as it does in production.
    keep_secrets_out_of_exchangelib_logs()
    root = logging.getLogger()
    root.addHandler(_LOGS)
    root.setLevel(logging.DEBUG)
    config.stash[_CHECKS] = RunChecks()


def _watched_secrets() -> set[str]:
    logins = [*PASSWORDS, *(email.split("@")[0] for email in PASSWORDS), "CONTOSO\\alice", "CONTOSO\\bob"]
    return secret_forms([*PASSWORDS.values(), *EXTRA_SECRETS], logins)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands the tests to pytest-xdist workers (and runs none itself)."""
    return config.pluginmanager.has_plugin("dsession")


def _this_process_checks(config: pytest.Config) -> RunChecks:
    checks = RunChecks(log_records=len(_LOGS.texts), leaks=leaks(_LOGS.texts, _watched_secrets()))
    # The controller of an xdist run saw no SOAP traffic, and need not load the schema to say so.
    validator = None if _is_xdist_controller(config) else session_validator()
    if validator is not None:
        checks.soap_checked, checks.soap_invalid = validator.checked, len(validator.failures)
    # The metadata is parsed only if a Graph test ran in this process (graph_session_checker is cached).
    checker = None if _is_xdist_controller(config) or not graph_session_checker.cache_info().currsize else (
        graph_session_checker())
    if checker is not None:
        checks.graph_checked, checks.graph_invalid = checker.checked, len(checker.failures)
    return checks


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 - pytest-xdist's hook: a worker has finished
    reported = getattr(node, "workeroutput", {}).get(_WORKER_CHECKS)
    if reported is not None:  # a worker that crashed reports nothing; xdist fails the run for it already
        node.config.stash[_CHECKS].add(RunChecks(**reported))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    checks = session.config.stash[_CHECKS]  # under xdist, the controller has added up its workers' by now
    own = _this_process_checks(session.config)
    checks.add(own)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: a worker's exit status is not the run's, so tell the controller
        workeroutput[_WORKER_CHECKS] = asdict(own)
    if checks.leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook
    checks = config.stash[_CHECKS]
    terminalreporter.write_line(f"Logs: {checks.log_records} records captured, {len(checks.leaks)} with a password")
    for text in checks.leaks[:10]:
        terminalreporter.write_line(f"  password in a log: {text}", red=True)
    if not graph_schema_available(graph_schema_dir()):
        terminalreporter.write_sep(
            "!", f"GRAPH METADATA NOT FOUND at {graph_schema_dir()}: Graph tests fail", red=True, bold=True
        )
    else:
        terminalreporter.write_line(
            f"Graph metadata: {checks.graph_checked} JSON bodies checked, {checks.graph_invalid} invalid"
        )
    if not schema_available(schema_dir()):
        terminalreporter.write_sep(
            "!", f"EWS SCHEMA NOT FOUND at {schema_dir()}: SOAP documents were NOT validated", red=True, bold=True
        )
        return
    terminalreporter.write_line(
        f"EWS schema: {checks.soap_checked} SOAP parts validated, {checks.soap_invalid} invalid"
    )


@pytest.fixture(scope="session", autouse=True)
def instance_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The instance folder of every `flask --app widget ...` child process that inherits the environment (its keys,
    its database): in the run's temporary folder, never in the checkout, where the widget would put it."""
    folder = tmp_path_factory.mktemp("instance")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WIDGET_INSTANCE_PATH", str(folder))
        yield folder


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest revision, built once per session (per xdist worker): tests that
    need a fresh database copy it (databases.install_sqlite_copy) instead of migrating their own."""
    return migrate_sqlite_template(tmp_path_factory.mktemp("migrated"))


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
