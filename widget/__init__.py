"""Exchange widget: a CRM user's Microsoft Exchange mailbox inside the CRM."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

MIGRATIONS = Path(__file__).parent / "migrations"


def _asset_folder(name: str) -> str:
    """Where the templates or static files are: inside the package once installed from a wheel (widget/templates),
    beside it in a checkout (the top-level templates/ folder)."""
    packaged = Path(__file__).parent / name
    return str(packaged if packaged.is_dir() else Path(__file__).parent.parent / name)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application. Loading it starts nothing: no server, no scheduler, no network."""
    from htmx_flask import Htmx

    from .access_logs import keep_launch_tokens_out_of_access_logs
    from .cli import register_commands
    from .config import Settings
    from .extensions import csrf, db, limiter, login_manager, migrate
    from .secret_box import make_cipher
    from .security import init_security
    from .views import register_blueprints

    app = Flask(__name__, instance_relative_config=True, template_folder=_asset_folder("templates"),
                static_folder=_asset_folder("static"))
    # An id in a URL beyond what the database's integer columns hold is a 404, like any id that does not exist.
    app.url_map.converters["int"] = DatabaseIdConverter
    test_config = test_config or {}
    instance = Path(test_config.get("INSTANCE_PATH") or os.environ.get("WIDGET_INSTANCE_PATH") or app.instance_path)
    settings = Settings.load(instance)
    app.instance_path = str(instance)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # A database error's message would otherwise carry the statement's values: whole rows of mail, into logs.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "hide_parameters": True},
        SESSION_COOKIE_NAME="widget_session",
        SESSION_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        WIDGET_SETTINGS=settings,
        WIDGET_AUTO_MIGRATE=True,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,  # no request body larger than a CSV upload may be
    )
    app.config.update(test_config)
    if settings.trusted_proxies:
        # Behind a reverse proxy the client's address (rate limits) and the scheme come from X-Forwarded-*, and
        # only from as many proxies as the deployment says it has: a client cannot forge its way past them.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.signin"
    limiter.init_app(app)
    Htmx(app)
    app.extensions["widget.cipher"] = make_cipher(settings.encryption_keys)
    keep_launch_tokens_out_of_access_logs()
    init_security(app)
    register_blueprints(app)
    register_commands(app)
    _migrate_before_serving(app)
    return app


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in routes: non-negative and at most 2**31 - 1 (PostgreSQL's INTEGER), or the URL does not match."""

    def __init__(self, url_map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = None,
                 signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits, min, 2**31 - 1 if max is None else max, signed)


def _migrate_before_serving(app: Flask) -> None:
    """Before this process serves its first request: apply pending migrations (`flask db upgrade` does it ahead of
    time) and warn if rate limits live in memory while other processes serve the same instance.

    Done around the WSGI application, before Flask opens the request's session: the session cookie's kind (and
    every other answer) depends on settings that only a migrated database holds, the first answer's included.
    """
    from .worker_census import warn_if_limits_are_not_shared

    lock = threading.Lock()
    state = {"done": False}
    serve = app.wsgi_app

    def prepare_once_then_serve(environ: dict[str, Any], start_response: Any) -> Any:
        if not state["done"]:
            with lock:
                if not state["done"]:
                    if app.config["WIDGET_AUTO_MIGRATE"]:
                        from .migrating import upgrade_database

                        with app.app_context():
                            upgrade_database(app)
                    if not app.testing:
                        warn_if_limits_are_not_shared(app.instance_path, app.config["RATELIMIT_STORAGE_URI"])
                    state["done"] = True
        return serve(environ, start_response)

    app.wsgi_app = prepare_once_then_serve
