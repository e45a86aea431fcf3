"""Every unsafe request of the widget needs the CSRF token; only the bearer-token API is exempt."""

from __future__ import annotations

import re

from contoso import PASSWORDS
from web_helpers import post

from widget.extensions import db
from widget.models import CrmRecord, User

EXEMPT = {"api.crm_records"}  # authenticated by a bearer token, not by a cookie


def _post_urls(app) -> list[tuple[str, str]]:
    """Each POST route with its placeholders filled in with real ids."""
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.email == "alice@contoso.com"))
        db.session.add(CrmRecord(module="Contacts", crm_id="C-1", name="Lena"))
        db.session.commit()
    values = {"user_id": str(user_id), "id": str(user_id), "module": "Contacts", "record_id": "C-1",
              "email_id": "1", "token_id": "1", "upload_id": "x" * 32}
    urls = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in EXEMPT:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: values.get(match.group(1), "1"), rule.rule)
        urls.append((rule.endpoint, path))
    return urls


def test_it_refuses_every_post_without_a_csrf_token(app, client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])  # so that alice exists, then act as admin
    admin = app.test_client()
    post(admin, "/signin", {"email": "admin@example.com", "password": "Admin-password-1"})
    urls = _post_urls(app)
    assert len(urls) >= 15  # the check covers the whole widget, not a sample
    for endpoint, path in urls:
        for who in (client, admin):
            reply = who.post(path, data={"email": "x@example.com", "password": "x"})
            assert reply.status_code == 400, f"{endpoint} {path} answered {reply.status_code} without a token"
    assert admin.get("/admin/").status_code == 200 and client.get("/dashboard").status_code == 200
