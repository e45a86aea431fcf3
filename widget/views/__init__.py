"""The web front end: one blueprint per concern."""

from __future__ import annotations

from flask import Flask, render_template


def register_blueprints(app: Flask) -> None:
    """Register every blueprint and the error pages they share."""
    from .. import service_account
    from ..local_time import in_user_zone
    from . import account, admin, api, auth, crm_admin, dashboard, emails, health, history, meetings, tasks
    from .navigation import SETTINGS_SECTIONS

    for module in (auth, dashboard, account, admin, emails, crm_admin, api, health, history, meetings, tasks):
        app.register_blueprint(module.bp)
    app.add_template_filter(in_user_zone)
    app.add_template_global(SETTINGS_SECTIONS, "settings_sections")
    app.add_template_global(service_account.refused, "service_refused")

    @app.errorhandler(429)
    def too_many(error: Exception) -> tuple[str, int]:
        return render_template("errors/message.html", title="Too many attempts",
                               message="Too many attempts in a short time. Wait a minute, then try again."), 429

    @app.errorhandler(403)
    def forbidden(error: Exception) -> tuple[str, int]:
        return render_template("errors/message.html", title="Not allowed",
                               message="Your account may not open this page."), 403

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return render_template("errors/message.html", title="Not found",
                               message="There is nothing at this address."), 404
