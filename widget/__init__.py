"""Exchange widget: a CRM user's Microsoft Exchange mailbox inside the CRM."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application. Loading it starts nothing: no server, no scheduler, no network."""
    app = Flask(__name__, instance_relative_config=True, template_folder="../templates", static_folder="../static")
    app.config.from_mapping(SECRET_KEY=None)
    if test_config:
        app.config.update(test_config)

    from .cli import register_commands

    register_commands(app)
    return app
