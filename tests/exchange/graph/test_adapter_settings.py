"""Choosing Exchange Online in the settings: the Graph fields, their checks, the environment pinning them, and the
factory handing out the Graph adapter (application access) with a credential check that reads the user's Inbox."""

from __future__ import annotations

import pytest
from graph_client import register_app, use_graph

from widget import settings
from widget.config import ConfigError
from widget.exchange.factory import check_credentials, mailbox_for
from widget.exchange.graph.adapter import GraphMailboxPort
from widget.exchange.problems import ExchangeProblem
from widget.models import User


def test_graph_urls_must_be_https_and_blank_means_microsofts():
    assert settings.validate({"graph_base_url": "", "graph_authority_url": "https://login.example.us/"},
                             ("graph_base_url", "graph_authority_url")) == {
        "graph_base_url": "https://graph.microsoft.com/v1.0", "graph_authority_url": "https://login.example.us"}
    with pytest.raises(settings.SettingsError) as refused:
        settings.validate({"graph_base_url": "http://graph.example/v1.0", "exchange_kind": "online"},
                          ("graph_base_url", "exchange_kind"))
    assert set(refused.value.errors) == {"graph_base_url", "exchange_kind"}
    assert "https" in refused.value.errors["graph_base_url"]


def test_the_environment_pins_the_backend_and_refuses_an_unknown_one(app, monkeypatch):
    monkeypatch.setenv("WIDGET_EXCHANGE_KIND", "graph")
    with app.test_request_context():
        assert settings.load().exchange_kind == "graph" and "exchange_kind" in settings.load().pinned
    monkeypatch.setenv("WIDGET_EXCHANGE_KIND", "exchange-online")
    with app.test_request_context(), pytest.raises(ConfigError, match="WIDGET_EXCHANGE_KIND"):
        settings.load()


def test_the_factory_gives_the_graph_adapter_and_checks_the_app_can_read_the_inbox(app, sandbox, front):
    with app.test_request_context(), pytest.raises(ExchangeProblem):  # EWS by default: bob has no password stored
        mailbox_for(User(email="bob@contoso.com"), settings.load())
    use_graph(app, front)
    with app.test_request_context():
        current = settings.load()
        port = mailbox_for(User(email="Bob@contoso.com"), current)
        assert isinstance(port, GraphMailboxPort) and port.address == "bob@contoso.com"
        check_credentials(current, "bob@contoso.com", "", "")
    register_app(sandbox, client_id="bob-only", secret="Bob-only-secret-1", mailboxes=["bob@contoso.com"])
    with app.app_context():
        settings.save({"graph_client_id": "bob-only", "graph_client_secret": "Bob-only-secret-1"})
    with app.test_request_context():
        with pytest.raises(ExchangeProblem) as denied:
            check_credentials(settings.load(), "alice@contoso.com", "", "")
        assert denied.value.kind == "access"
        settings.save({"graph_client_secret": ""})  # a blank secret: not set up
    with app.test_request_context(), pytest.raises(ExchangeProblem) as missing:
        mailbox_for(User(email="bob@contoso.com"), settings.load())
    assert missing.value.kind == "not_configured"
