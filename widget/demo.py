"""`flask --app widget demo`: the whole widget on one laptop, with no Exchange server at hand.

The demo runs the Exchange sandbox in this process, filled with the demo organisation (widget.sandbox.seed),
migrates the widget's database, points the administrator's settings at the sandbox, creates the demo
administrator, makes a launch secret if there is none, and serves the widget on loopback with werkzeug's
threaded server. Everything it prints but the sandbox's port is fixed, so that the README can list it.

The sandbox's mailboxes are kept in the instance folder (DEMO_STORE_FILE), beside the widget's database, so
that a restart finds Exchange as the widget left it; delete that file (or the whole instance folder) to start
from a freshly seeded organisation.

The sandbox serves Microsoft Graph too (HTTPS on another free port, its CA in the instance folder), with one
application registered (DEMO_GRAPH_APP), so that Graph clients can be tried on the demo's mailboxes; the widget
itself still talks EWS to it.

This module imports the sandbox and the server only when a function runs: the CLI imports it lazily too.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from .sandbox import Sandbox

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 5000
DEMO_ADMIN_EMAIL = "admin@demo.example"
DEMO_ADMIN_PASSWORD = "Demo-admin-pw-1"
DEMO_STORE_FILE = "demo-exchange.store"
DEMO_LOCKOUT = 5  # failed logins before a sandbox account locks, as a typical Active Directory policy
# The demo's Graph application (client id, secret): the four application permissions over every mailbox.
DEMO_GRAPH_APP = ("6d1e2f3a-0c4b-4d5e-8f9a-2b7c00000001", "Demo-graph-secret-1")

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoAccountLine:
    """One account the banner lists: who, with which password, and what for."""

    email: str
    password: str
    description: str


def start_sandbox(instance_path: Path, say: Say) -> Sandbox:
    """The demo's Exchange on a free loopback port: the stored organisation if there is one, else a new one."""
    from .sandbox import Sandbox, Store
    from .sandbox.seed import seed_demo

    store_file = instance_path / DEMO_STORE_FILE
    store = None
    if store_file.exists():
        try:
            store = Store.load(store_file)
        except Exception as error:  # an unreadable or outdated pickle: seed a new organisation instead
            say(f"Cannot read the demo's Exchange from {store_file} ({error}): seeding a new one.")
    if store is None:
        store = Store(lockout_threshold=DEMO_LOCKOUT)
        summary = seed_demo(store)
        say(f"Seeded the demo's Exchange: {len(summary.users)} accounts, {summary.messages} messages, "
            f"{summary.calendar_items} calendar items, {summary.tasks} tasks.")
    from .sandbox.graph.server import identity_of

    identity = identity_of(store)
    if DEMO_GRAPH_APP[0] not in identity.apps:
        identity.register(client_id=DEMO_GRAPH_APP[0], secret=DEMO_GRAPH_APP[1], display_name="Demo Graph app")
    sandbox = Sandbox(store, store_path=store_file)
    sandbox.persist()
    sandbox.start(DEMO_HOST, 0)
    sandbox.start_graph(DEMO_HOST, 0, tls_dir=instance_path)
    return sandbox


def prepare(app: Flask, sandbox: Sandbox, crm_origin: str | None = None) -> list[str]:
    """Migrate the database, point the settings at the sandbox, create the demo administrator, make a launch secret,
    and let the demo CRM (`crm_origin`) frame the widget.

    Runs again on every start: the sandbox's port changes, and the administrator's password goes back to the one
    the README lists. Settings that the administrator changed otherwise are kept. Returns warnings to print.
    """
    from werkzeug.security import check_password_hash, generate_password_hash

    from . import settings
    from .extensions import db
    from .migrating import upgrade_database
    from .models import User
    from .sandbox.seed import DEMO_SERVICE_ACCOUNT

    with app.app_context():
        upgrade_database(app)
        values: dict[str, Any] = {"ews_url": sandbox.url, "ews_auth": "NTLM"}
        current = settings.load()
        if not current.is_set("launch_secret"):
            values["launch_secret"] = secrets.token_urlsafe(32)
        if not current.service_username:
            # Ready for the administrator to switch impersonation on; it stays off until then.
            values["service_username"] = DEMO_SERVICE_ACCOUNT.email
            values["service_password"] = DEMO_SERVICE_ACCOUNT.password
        if crm_origin and crm_origin not in current.frame_origins:
            # The demo CRM's port may differ from the last start's: its earlier loopback origins go.
            kept = [origin for origin in current.frame_origins if not origin.startswith("http://127.0.0.1:")]
            values["frame_origins"] = [*kept, crm_origin]
        settings.save(values)
        warnings = [f"WIDGET_{key.upper()} is set in the environment: the demo cannot set {key} itself."
                    for key in ("ews_url", "ews_auth", "frame_origins") if key in current.pinned]
        admin = db.session.scalar(db.select(User).where(User.email == DEMO_ADMIN_EMAIL))
        if admin is None:
            admin = User(email=DEMO_ADMIN_EMAIL, display_name="Demo administrator")
            db.session.add(admin)
        admin.is_admin = True
        admin.disabled = False
        if not admin.admin_password_hash or not check_password_hash(admin.admin_password_hash, DEMO_ADMIN_PASSWORD):
            if admin.admin_password_hash:
                admin.session_version = (admin.session_version or 1) + 1  # a password change ends old sessions
            admin.admin_password_hash = generate_password_hash(DEMO_ADMIN_PASSWORD)
        db.session.commit()
        _import_demo_crm()
    return warnings


def _import_demo_crm() -> None:
    """The demo CRM's records: each external person of the seeded mail as a Contact or Lead, and their companies
    as Accounts, so that the first sync shows mail on records. Importing again changes nothing."""
    from .crm.directory import RecordInput, upsert_records
    from .extensions import db
    from .sandbox.seed import DEMO_CRM_PEOPLE

    accounts = {person.company for person in DEMO_CRM_PEOPLE if person.kind == "Contact"}
    rows = [RecordInput(module="Accounts", crm_id=f"demo-account-{index}", name=company)
            for index, company in enumerate(sorted(accounts), start=1)]
    account_ids = {row.name: row.crm_id for row in rows}
    for index, person in enumerate(DEMO_CRM_PEOPLE, start=1):
        if person.kind == "Contact":
            rows.append(RecordInput(module="Contacts", crm_id=f"demo-contact-{index}", name=person.name,
                                    emails=(person.email,), account_crm_id=account_ids[person.company]))
        else:
            rows.append(RecordInput(module="Leads", crm_id=f"demo-lead-{index}", name=person.name,
                                    emails=(person.email,)))
    upsert_records(rows)
    db.session.commit()


def accounts() -> list[DemoAccountLine]:
    """The accounts the banner prints: the administrator, then the demo organisation's people."""
    from .sandbox.seed import DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT

    lines = [DemoAccountLine(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, "administrator (Settings)")]
    lines += [DemoAccountLine(a.email, a.password, f"{a.display_name}, {a.title}") for a in DEMO_ACCOUNTS]
    lines.append(DemoAccountLine(DEMO_SERVICE_ACCOUNT.email, DEMO_SERVICE_ACCOUNT.password,
                                 "service account for impersonation (not a user)"))
    return lines


def banner(widget_url: str, sandbox: Sandbox, crm_url: str | None = None) -> list[str]:
    """The lines printed once the demo serves: where to go and how to sign in."""
    width = max(len(line.email) for line in accounts())
    lines = [
        f"Widget: {widget_url}",
        *([f"Demo CRM (the widget inside a CRM, as your users see it): {crm_url}"] if crm_url else []),
        f"Exchange sandbox (EWS): {sandbox.url}",
        *_graph_lines(sandbox),
        "Sign in with one of these accounts (email, password):",
    ]
    lines += [f"  {line.email:<{width}}  {line.password:<16}  {line.description}" for line in accounts()]
    lines.append("Press Ctrl-C to stop.")
    return lines


def _graph_lines(sandbox: Sandbox) -> list[str]:
    graph = sandbox.graph
    if graph is None:
        return []
    return [f"Microsoft Graph: {graph.graph_url}", f"Sign-in authority: {graph.authority}",
            f"CA certificate: {graph.ca_file}", f"Graph app (client id, secret): {DEMO_GRAPH_APP[0]}  "
            f"{DEMO_GRAPH_APP[1]}"]


def serve(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """The widget on werkzeug's threaded server (port 0 picks a free one); the caller runs serve_forever()."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietQueryHandler(WSGIRequestHandler):
        """Logs requests without their query strings: a launch token is a credential while it lives."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            method = getattr(self, "command", None) or "-"
            path = (getattr(self, "path", None) or "-").split("?", 1)[0]
            self.log("info", '"%s %s %s" %s %s', method, path, getattr(self, "request_version", ""), code, size)

    return make_server(host, port, app, threaded=True, request_handler=QuietQueryHandler)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(app: Flask, port: int, say: Say) -> None:
    """Start the sandbox, prepare the widget, print the banner and serve until Ctrl-C or SIGTERM stops both."""
    from .sync.scheduler import Scheduler
    from .views import demo_crm

    sandbox = start_sandbox(Path(app.instance_path), say)
    server = None
    scheduler = Scheduler(app)
    # A service manager's SIGTERM takes the same clean path as Ctrl-C (only the main thread may set a handler).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        # Ctrl-C may come at any moment, even right after the banner: each way ends here, then stops cleanly.
        with contextlib.suppress(KeyboardInterrupt):
            server = serve(app, DEMO_HOST, port)
            crm_origin, widget_origin = demo_crm.origins(server.server_port)
            app.config["WIDGET_DEMO_PORT"] = server.server_port
            app.register_blueprint(demo_crm.bp)
            warnings = prepare(app, sandbox, crm_origin)
            if not scheduler.start():
                say("Another scheduler runs on this instance folder: this demo does not sync by itself.")
            for line in [*warnings, *banner(f"{widget_origin}/", sandbox, f"{crm_origin}/demo/crm")]:
                say(line)
            server.serve_forever()  # werkzeug's returns on KeyboardInterrupt
        say("Stopping the demo.")
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.server_close()
        scheduler.stop()
        sandbox.stop()
        sandbox.persist()
