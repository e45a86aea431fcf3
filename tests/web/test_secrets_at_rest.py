"""Secrets stay secret: not readable in the database, not in logs (exchangelib's included)."""

from __future__ import annotations

import logging
from pathlib import Path

from contoso import PASSWORDS
from log_watch import LogCollector, leaks, secret_forms
from sqlalchemy import inspect

from widget import settings
from widget.extensions import db


def _everything_stored(app) -> str:
    """Every value of every table, as text, plus the raw SQLite file when there is one."""
    parts = []
    with app.app_context():
        for table in inspect(db.engine).get_table_names():
            for row in db.session.execute(db.text(f'SELECT * FROM "{table}"')):
                parts.extend(str(value) for value in row)
        url = db.engine.url
        if url.get_backend_name() == "sqlite":
            db.session.remove()
            db.engine.dispose()
            parts.append(Path(url.database).read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_it_stores_no_password_readably(app, sign_in):
    assert sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"]).status_code == 302
    with app.test_request_context():
        settings.save({"service_password": PASSWORDS["svc-crm@contoso.com"], "launch_secret": "Launch-secret-xyz-1"})
    stored = _everything_stored(app)
    assert "alice@contoso.com" in stored  # the check reads real data
    for secret in (PASSWORDS["alice@contoso.com"], PASSWORDS["svc-crm@contoso.com"], "Launch-secret-xyz-1",
                   "Admin-password-1"):
        assert secret not in stored
    with app.test_request_context():
        current = settings.load()
        assert current.service_password == PASSWORDS["svc-crm@contoso.com"]
        assert current.launch_secret == "Launch-secret-xyz-1"


def test_it_takes_authorization_headers_and_soap_out_of_exchangelib_logs():
    from widget.exchange.ews.logs import keep_secrets_out_of_exchangelib_logs

    keep_secrets_out_of_exchangelib_logs()
    collector = LogCollector()
    logger = logging.getLogger("exchangelib.util")
    logger.addHandler(collector)
    try:
        logger.error("Request headers: %s\n%s", {"Authorization": "Basic YWxpY2U6QWxpY2UtcHctMQ=="},
                     b'<?xml version="1.0"?><s:Envelope><s:Body>Alice-pw-1</s:Body></s:Envelope>')
    finally:
        logger.removeHandler(collector)
    [text] = collector.texts
    assert "Request headers" in text and "[redacted]" in text and "[SOAP document redacted]" in text
    assert leaks(collector.texts, secret_forms(["Alice-pw-1"], ["alice"])) == []


def test_it_finds_a_password_planted_in_a_log():
    collector = LogCollector()
    logger = logging.getLogger("widget.planted")
    logger.addHandler(collector)
    logger.propagate = False  # kept from the run's own collector, which would rightly fail the run
    try:
        logger.warning("Authorization: Basic %s", "YWxpY2U6QWxpY2UtcHctMQ==")
        logger.warning("plain %s", "Alice-pw-1")
    finally:
        logger.removeHandler(collector)
    assert len(leaks(collector.texts, secret_forms(["Alice-pw-1"], ["alice"]))) == 2
