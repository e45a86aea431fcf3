"""`flask --app widget sandbox --graph-port Q ...`: the banner's Graph lines, the CA file, apps from --app, and a
restart on the same store that keeps the CA, the apps and the tokens already issued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from graph_client import GRAPH_SCOPE
from msal import ConfidentialClientApplication
from requests import Session

from widget.cli import sandbox_command
from widget.sandbox.graph.identity import TENANT_ID

BANNER_END = "Press Ctrl-C to stop."


def _session(ca_file: str) -> Session:
    session = Session()
    session.trust_env = False
    session.verify = ca_file
    return session


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    """Start `flask --app widget sandbox ARGS`, return its banner as {label: value}; stopped with Ctrl-C after."""
    processes: list[subprocess.Popen] = []

    def run(*args: str) -> dict[str, str]:
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "widget", "sandbox", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        processes.append(process)
        banner: dict[str, str] = {}
        assert process.stdout is not None
        for line in process.stdout:
            label, _, value = line.rstrip("\n").partition(": ")
            banner.setdefault(label, value)
            if line.strip() == BANNER_END:
                return banner
        pytest.fail(f"no banner: {banner}")

    yield run
    for process in processes:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def test_it_serves_graph_with_the_apps_given_and_keeps_them_across_a_restart(start, tmp_path: Path) -> None:
    store = tmp_path / "org" / "exchange.store"
    store.parent.mkdir()
    args = ("--port", "0", "--graph-port", "0", "--store", str(store), "--user", "dana@contoso.com:Dana-pw-1",
            "--app", "crm-widget:Graph-app-secret-1")
    banner = start(*args)
    graph_url, authority = banner["Microsoft Graph"], banner["Sign-in authority"]
    assert graph_url.startswith("https://127.0.0.1:") and graph_url.endswith("/v1.0")
    assert authority == graph_url.removesuffix("/v1.0") + "/contoso.onmicrosoft.com"
    assert banner["Tenant"] == f"contoso.onmicrosoft.com ({TENANT_ID})"
    assert banner["CA certificate"] == str(store.parent / "ca.pem")
    ca_before = Path(banner["CA certificate"]).read_bytes()
    app = ConfidentialClientApplication("crm-widget", client_credential="Graph-app-secret-1", authority=authority,
                                        http_client=_session(banner["CA certificate"]), instance_discovery=False)
    token = app.acquire_token_for_client(GRAPH_SCOPE)["access_token"]
    inbox = _session(banner["CA certificate"]).get(f"{graph_url}/users/dana@contoso.com/mailFolders/inbox",
                                                   headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert inbox.status_code == 200 and inbox.json()["displayName"] == "Inbox"
    again = start("--port", "0", "--graph-port", "0", "--store", str(store))
    assert Path(again["CA certificate"]).read_bytes() == ca_before
    assert again["App"].startswith("crm-widget  Calendars.ReadWrite, Mail.ReadWrite, Mail.Send, Tasks.ReadWrite.All")
    later = _session(again["CA certificate"]).get(
        f"{again['Microsoft Graph']}/users/dana@contoso.com/mailFolders/inbox",
        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert later.status_code == 200  # the tenant's signing key was kept with the store


def test_without_a_store_the_ca_goes_to_a_temporary_folder(start) -> None:
    banner = start("--port", "0", "--graph-port", "0", "--tenant", "fabrikam.onmicrosoft.com")
    assert banner["Sign-in authority"].endswith("/fabrikam.onmicrosoft.com")
    assert Path(banner["CA certificate"]).is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--app", "crm:secret"], "need --graph-port"),
    (["--graph-port", "0", "--app", "no-secret"], "expected CLIENT_ID:SECRET"),
    (["--graph-port", "70000"], "70000"),
])
def test_it_refuses_bad_graph_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_command, args)
    assert result.exit_code == 2
    assert message in result.output
