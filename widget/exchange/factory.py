"""Which backend serves a user's mailbox, from the administrator's settings: the one place that picks an adapter.

Everything here loads its adapter lazily: exchangelib is slow to import, and pages that never reach Exchange must
not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app

from ..secret_box import decrypt
from .problems import ExchangeProblem

if TYPE_CHECKING:
    from ..models import User
    from ..settings import WidgetSettings
    from .port import MailboxPort


def exchange_login(email: str, domain: str = "") -> str:
    """The user name to give Exchange: DOMAIN\\user when a domain (or a DOMAIN\\user name) is given, else the email."""
    email = email.strip()
    domain = domain.strip().rstrip("\\")
    if "\\" in email:
        return email
    if "\\" in domain:  # the whole DOMAIN\user name was typed into the domain field
        return domain
    if domain:
        return f"{domain}\\{email.split('@')[0]}"
    return email


def _server(current: WidgetSettings) -> Any:
    from .ews.connection import ServerConfig

    return ServerConfig.from_settings(current, current_app.instance_path)


def _graph(current: WidgetSettings) -> Any:
    from .graph.client import GraphConfig

    return GraphConfig.from_settings(current, current_app.instance_path)


def _graph_port(current: WidgetSettings, email: str) -> Any:
    from .graph.adapter import GraphMailboxPort

    return GraphMailboxPort(_graph(current), email, history_days=current.sync_history_days)


def mailbox_for(user: User, current: WidgetSettings) -> MailboxPort:
    """The user's mailbox: over Microsoft Graph with the application's access when Exchange Online is chosen; over
    EWS with their stored password, or through the service account when impersonation is on."""
    if current.exchange_kind == "graph":
        return _graph_port(current, user.email)  # application access: delegated sign-in comes later
    from .ews.adapter import EwsMailboxPort
    from .ews.connection import account_for

    server = _server(current)
    if user.has_password:
        username = user.exchange_username or user.email
        return EwsMailboxPort(account_for(server, user.email, username, decrypt(user.exchange_password)))
    if current.impersonation and current.service_username and current.service_password:
        from ..service_account import REFUSED_MESSAGE, refused

        if refused():
            # Never tried again: a few more refusals would lock the service account (and every user) out.
            raise ExchangeProblem("service_refused", REFUSED_MESSAGE)
        login = exchange_login(current.service_username, current.service_domain)
        return EwsMailboxPort(account_for(server, user.email, login, current.service_password, impersonate=True))
    raise ExchangeProblem("credentials", "No Exchange password is stored for this account: authorize first.")


def check_credentials(current: WidgetSettings, email: str, login: str, password: str) -> None:
    """Check a user's credentials live against their mailbox, with ONE attempt (no retry can lock them out);
    raises ExchangeProblem saying what went wrong. For Exchange Online (application access), whether the app can
    read the user's Inbox: no password is involved."""
    if current.exchange_kind == "graph":
        _graph_port(current, email).check_inbox()
        return
    from .ews.connection import verify_user

    verify_user(_server(current), email, login, password)


def act_for_mailbox(current: WidgetSettings, login: str, password: str, mailbox: str) -> int:
    """Act for `mailbox` as the service account `login`: the number of items in its Inbox (ExchangeProblem if not)."""
    from .ews.diagnostics import impersonation_test

    return impersonation_test(_server(current), login, password, mailbox)


def diagnose_server(*args: Any, **kwargs: Any) -> Any:
    """Test connection: each check in turn (DNS, TCP, TLS, HTTP, EWS, credentials), naming the first that fails.
    See widget/exchange/ews/diagnostics.py for the arguments."""
    from .ews.diagnostics import diagnose

    return diagnose(*args, **kwargs)


def diagnosis_timeout() -> float:
    """How long Test connection waits for each check, by default."""
    from .ews.diagnostics import TIMEOUT

    return TIMEOUT
