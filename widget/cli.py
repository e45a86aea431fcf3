"""The `flask --app widget ...` commands.

create_app() registers these on every start, so this module imports only click and Flask at the top; each
command imports what it needs (the sandbox, the mailbox adapters, ...) when it runs.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask

if TYPE_CHECKING:
    from .sandbox import Sandbox, Store

AUTH_SCHEMES = {"ntlm": "NTLM", "basic": "Basic"}
# Used when nothing else gives the sandbox an account, so that `sandbox --port P` alone is usable.
DEFAULT_USER = ("alice@contoso.com", "Alice-pw-1")


def register_commands(app: Flask) -> None:
    """Add the widget's commands to `app.cli`."""
    app.cli.add_command(sandbox_command)
    app.cli.add_command(create_admin_command)
    from .crm.commands import api_token_command, import_records_command
    from .sync.commands import sync_command

    app.cli.add_command(import_records_command)
    app.cli.add_command(api_token_command)
    app.cli.add_command(sync_command)
    app.cli.add_command(demo_command)


def _read_new_password() -> str:
    # A terminal gets a hidden prompt asked twice; a pipe (automation) gives the password on its first line.
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@click.command("create-admin")
@click.argument("email")
def create_admin_command(email: str) -> None:
    """Create an administrator with a local password (prompted, or read from standard input).

    An existing user with this address becomes an administrator; an existing administrator gets the new password.
    """
    from flask import current_app
    from werkzeug.security import generate_password_hash

    from .addresses import AddressError, normalise_address
    from .extensions import db
    from .migrating import upgrade_database
    from .models import User

    try:
        email = normalise_address(email)
    except AddressError as error:
        raise click.BadParameter(str(error), param_hint="EMAIL") from None
    password = _read_new_password()
    if len(password) < 12:
        raise click.ClickException("choose a password of at least 12 characters")
    upgrade_database(current_app)
    user = db.session.scalar(db.select(User).where(User.email == email))
    created = user is None
    if created:
        user = User(email=email, display_name=email.split("@")[0])
        db.session.add(user)
    user.is_admin = True
    user.admin_password_hash = generate_password_hash(password)
    user.session_version = (user.session_version or 1) + (0 if created else 1)
    db.session.commit()
    _say(f"{'Created' if created else 'Updated'} administrator {email}.")


def _account(value: str, option: str) -> tuple[str, str]:
    # An address holds no ':', a password may: split on the first one.
    email, sep, password = value.partition(":")
    if not sep or "@" not in email or not password:
        raise click.BadParameter(f"expected EMAIL:PASSWORD, got {value!r}", param_hint=option)
    return email.strip().lower(), password


def _graph_app(value: str) -> tuple[str, str]:
    # An application id holds no ':', a secret may: split on the first one.
    client_id, sep, secret = value.partition(":")
    if not sep or not client_id.strip() or not secret:
        raise click.BadParameter(f"expected CLIENT_ID:SECRET, got {value!r}", param_hint="--app")
    return client_id.strip(), secret


def _auth_schemes(value: str) -> tuple[str, ...]:
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in AUTH_SCHEMES]
    if unknown or not names:
        raise click.BadParameter(f"choose from {', '.join(AUTH_SCHEMES)} (comma-separated), got {value!r}",
                                 param_hint="--auth")
    return tuple(dict.fromkeys(AUTH_SCHEMES[name] for name in names))


def _say(text: str = "") -> None:
    # Flushed line by line: scripts and tests read the URL from a pipe while the server keeps running.
    print(text, flush=True)


def _build_store(store_file: Path | None, lockout: int | None) -> tuple[Store, bool]:
    """The store from `store_file` if it exists (True), else a new one (False)."""
    from .sandbox import Store

    if store_file is not None and store_file.exists():
        try:
            store = Store.load(store_file)
        except Exception as error:  # a pickle can fail in many ways; all mean "not a store we can use"
            raise click.ClickException(f"cannot load the sandbox store from {store_file}: {error}") from error
        if lockout is not None:
            store.lockout_threshold = lockout or None
        return store, True
    return Store(lockout_threshold=5 if lockout is None else (lockout or None)), False


def _print_banner(sandbox: Sandbox, store_file: Path | None) -> None:
    store = sandbox.store
    _say(f"EWS URL: {sandbox.url}")
    _say(f"Control API: {sandbox.base_url}/sandbox/")
    _say(f"Auth: {', '.join(sandbox.authenticator.schemes)}")
    _say(f"Store: {store_file} (saved after every change)" if store_file else "Store: in memory")
    if sandbox.schema_validator is not None:
        _say("Schema: every SOAP document is validated (see /sandbox/stats)")
    graph = sandbox.graph
    if graph is not None:
        _say(f"Microsoft Graph: {graph.graph_url}")
        _say(f"Sign-in authority: {graph.authority}")
        _say(f"Tenant: {graph.identity.tenant} ({graph.identity.tenant_id})")
        _say(f"CA certificate: {graph.ca_file}")
        for app in graph.identity.apps.values():
            scope = "every mailbox" if app.mailboxes is None else ", ".join(sorted(app.mailboxes))
            _say(f"App: {app.client_id}  {', '.join(sorted(app.permissions))}  ({scope})")
    for user in store.users.values():
        extra = "  (can impersonate)" if user.can_impersonate else ""
        _say(f"Account: {user.email}  {user.domain}\\{user.username}  {user.password}{extra}")
    _say("Press Ctrl-C to stop.")


@click.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port; 0 picks a free one (the banner shows it).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--user", "users", multiple=True, metavar="EMAIL:PASSWORD",
              help="Add a user (user name = local part, domain CONTOSO). Repeatable.")
@click.option("--impersonator", metavar="EMAIL:PASSWORD", help="Add a service account allowed to impersonate.")
@click.option("--seed", type=click.Choice(["demo"]), help="Fill a new store with the demo organisation.")
@click.option("--messages", type=click.IntRange(0), default=0,
              help="Deliver N messages into the first user's inbox (a new store only).")
@click.option("--store", "store_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Load the store from FILE if it exists and save it there after every change.")
@click.option("--auth", "auth", default="ntlm,basic", show_default=True, help="Accepted auth schemes, in order.")
@click.option("--lockout", type=click.IntRange(0), default=None,
              help="Failed logins before an account locks (0 never; default 5).")
@click.option("--schema", "schema_folder", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Validate every SOAP document against the EWS schema in this folder (see /sandbox/stats).")
@click.option("--graph-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve Microsoft Graph and the identity platform over HTTPS on 127.0.0.1:PORT (0 picks one).")
@click.option("--tls-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the CA (ca.pem) and the server certificate go; default: the --store file's folder, else a "
                   "temporary folder.")
@click.option("--tenant", default=None, metavar="DOMAIN",
              help="The tenant's domain (default contoso.onmicrosoft.com; a fixed GUID names it too).")
@click.option("--app", "apps", multiple=True, metavar="CLIENT_ID:SECRET",
              help="Register an application with Mail.ReadWrite, Mail.Send, Calendars.ReadWrite and "
                   "Tasks.ReadWrite.All over every mailbox, admin-consented. Repeatable.")
def sandbox_command(port: int, host: str, users: tuple[str, ...], impersonator: str | None, seed: str | None,
                    messages: int, store_file: Path | None, auth: str, lockout: int | None,
                    schema_folder: Path | None, graph_port: int | None, tls_dir: Path | None, tenant: str | None,
                    apps: tuple[str, ...]) -> None:
    """Run the Exchange sandbox alone: EWS at /EWS/Exchange.asmx and the control API at /sandbox/; with
    --graph-port, Microsoft Graph at https://127.0.0.1:PORT/v1.0 and its sign-in authority, on the same mailboxes.

    The banner lines "EWS URL: ...", "Control API: ..." and "Account: EMAIL  DOMAIN\\USER  PASSWORD" (and with
    Graph "Microsoft Graph: ...", "Sign-in authority: ...", "CA certificate: ...") are printed before serving, for
    scripts to read. Seeding (--seed, --messages) only fills a new store, so that a restart on the same --store
    file never duplicates mail.
    """
    from .sandbox import Sandbox
    from .sandbox.seed import seed_demo, seed_messages

    schemes = _auth_schemes(auth)
    graph_apps = [_graph_app(value) for value in apps]
    if graph_port is None and (graph_apps or tls_dir or tenant):
        raise click.BadParameter("--app, --tls-dir and --tenant need --graph-port", param_hint="--graph-port")
    accounts = [_account(value, "--user") for value in users]
    service = _account(impersonator, "--impersonator") if impersonator else None
    if store_file is not None:
        store_file = store_file.resolve()
        if not store_file.parent.is_dir():
            raise click.BadParameter(f"folder {store_file.parent} does not exist", param_hint="--store")
    store, loaded = _build_store(store_file, lockout)
    if loaded:
        _say(f"Loaded {len(store.users)} users and {len(store.items)} items from {store_file}")
    if seed == "demo" and not loaded:
        # Before the --user accounts, so that naming a demo address there keeps the demo's account.
        started = time.perf_counter()
        summary = seed_demo(store)
        _say(f"Seeded the demo: {len(summary.users)} accounts, {summary.messages} messages, "
             f"{summary.calendar_items} calendar items, {summary.tasks} tasks "
             f"({time.perf_counter() - started:.2f} s)")
    wanted = [(email, password, False) for email, password in accounts]
    if service:
        wanted.append((*service, True))
    for email, password, can_impersonate in wanted:
        if email in store.users:
            # Keeping the stored user (and its password) is what a restart on the same file wants.
            _say(f"{email} already exists in the store: kept as it is")
            continue
        store.add_user(email, password, can_impersonate=can_impersonate)
    if not loaded:
        if not any(not u.can_impersonate for u in store.users.values()):
            store.add_user(*DEFAULT_USER)
        if messages:
            target = accounts[0][0] if accounts else next(u.email for u in store.users.values()
                                                           if not u.can_impersonate)
            started = time.perf_counter()
            seed_messages(store, target, messages)
            _say(f"Seeded {messages} messages into {target}'s inbox ({time.perf_counter() - started:.2f} s)")
    elif seed or messages:
        _say("The store was loaded from its file: --seed and --messages are ignored")

    sandbox = Sandbox(store, auth_schemes=schemes, store_path=store_file)
    if schema_folder is not None:
        from .sandbox.schema import schema_available

        if not schema_available(schema_folder):
            raise click.BadParameter(f"no messages.xsd, types.xsd and xml.xsd in {schema_folder}",
                                     param_hint="--schema")
        sandbox.validate_against(schema_folder)
    if graph_port is not None:
        _register_graph_apps(store, graph_apps, tenant)
    sandbox.persist()
    where = f"{host}:{port}"
    try:
        sandbox.start(host, port)
        if graph_port is not None:
            where = f"127.0.0.1:{graph_port}"
            sandbox.start_graph("127.0.0.1", graph_port, tenant=tenant,
                                tls_dir=tls_dir or (store_file.parent if store_file else None))
    except OSError as error:
        sandbox.stop()
        raise click.ClickException(f"cannot listen on {where}: {error.strerror or error}") from error
    _print_banner(sandbox, store_file)
    _serve_until_stopped(sandbox)


def _register_graph_apps(store: Store, apps: list[tuple[str, str]], tenant: str | None) -> None:
    """Register the --app applications (an app the store holds already is kept as it is)."""
    from .sandbox.graph.identity import DEFAULT_TENANT
    from .sandbox.graph.server import identity_of

    identity = identity_of(store, tenant or DEFAULT_TENANT)
    for client_id, secret in apps:
        if client_id in identity.apps:
            _say(f"App {client_id} already exists in the store: kept as it is")
            continue
        identity.register(client_id=client_id, secret=secret)


def _serve_until_stopped(sandbox: Sandbox) -> None:
    """Block until Ctrl-C or SIGTERM, then stop serving and write the store one last time."""

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM (from a service manager or `kill`) takes the same clean path as Ctrl-C.
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        _say("Stopping the sandbox.")
    finally:
        signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
        sandbox.persist()
        sys.stdout.flush()


@click.command("demo")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="The widget's TCP port on 127.0.0.1; 0 picks a free one (the banner shows it).")
def demo_command(port: int) -> None:
    """Run the whole widget on this machine: an Exchange sandbox with the demo organisation, and the widget.

    The database is migrated, the settings point at the sandbox, the demo administrator exists, and the banner
    lists the widget's URL and the accounts to sign in with (fixed: see the README). Ctrl-C stops everything.
    """
    from flask import current_app

    from .demo import run

    # A port in use ends the command with werkzeug's own message, after the sandbox has stopped.
    run(current_app._get_current_object(), port, _say)
