"""The administrator's settings: typed fields kept in the database, each of which the environment can pin.

A deployment that is set up by automation gives WIDGET_<NAME> (or WIDGET_<NAME>_FILE for secrets); the admin
pages then show that field as set by the environment and do not change it. Secrets (the service account's
password, the launch secret) are stored encrypted and never shown back.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import g

from . import secret_box
from .config import ConfigError, env_value
from .extensions import db
from .models import Setting

SYNC_TYPES_EMAIL = ("off", "exchange_to_crm")
SYNC_TYPES_TWO_WAY = ("off", "two_way", "exchange_to_crm", "crm_to_exchange")
SYNC_TYPE_LABELS = {
    "off": "Off",
    "exchange_to_crm": "Exchange → CRM",
    "two_way": "Two-way",
    "crm_to_exchange": "CRM → Exchange",
}
EXCHANGE_KINDS = ("ews", "graph")
GRAPH_AUTHORITY_URL = "https://login.microsoftonline.com"
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
EWS_VERSIONS = ("", "Exchange2010_SP2", "Exchange2013", "Exchange2013_SP1", "Exchange2016")


@dataclass(frozen=True)
class Field:
    """One setting: its type, default, the environment variable that can pin it, and its label."""

    key: str
    kind: str  # "str", "bool", "int", "list", "choice" or "secret"
    default: Any
    label: str
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    @property
    def env_name(self) -> str:
        """The environment variable's name without its WIDGET_ prefix."""
        return self.key.upper()


FIELDS: tuple[Field, ...] = (
    Field("exchange_kind", "choice", "ews", "Exchange", "Exchange Server over EWS, or Exchange Online (Microsoft 365) "
          "over Microsoft Graph", choices=EXCHANGE_KINDS),
    Field("ews_url", "str", "", "EWS URL or host",
          "e.g. https://mail.example.com/EWS/Exchange.asmx, or just mail.example.com"),
    Field("ews_auth", "choice", "NTLM", "Authentication", choices=("NTLM", "Basic")),
    Field("ews_verify_tls", "bool", True, "Verify the server's TLS certificate"),
    Field("ews_ca_bundle", "str", "", "CA certificates (PEM)",
          "Only for a server whose certificate comes from an internal certificate authority"),
    Field("ews_version", "choice", "", "Exchange version", "Leave empty to let the widget ask the server",
          choices=EWS_VERSIONS),
    Field("lockout_threshold", "int", 5, "Lockout threshold of your directory",
          "Failed sign-ins after which your Active Directory locks an account (its account lockout threshold). "
          "The widget lets at most one fewer through per account in the window below, so it never locks anyone "
          "out", minimum=2, maximum=999),
    Field("lockout_window_minutes", "int", 30, "Lockout window of your directory (minutes)",
          "Your directory's \"Reset account lockout counter after\" time", minimum=1, maximum=99999),
    Field("impersonation", "bool", False, "Impersonation",
          "A service account with the ApplicationImpersonation role acts for every user"),
    Field("service_username", "str", "", "Service account user name"),
    Field("service_domain", "str", "", "Service account domain"),
    Field("service_password", "secret", "", "Service account password"),
    Field("graph_tenant", "str", "", "Tenant", "Your Microsoft 365 tenant: its domain (contoso.onmicrosoft.com) or id"),
    Field("graph_client_id", "str", "", "Application (client) id", "Of the app registered for the widget in Entra ID"),
    Field("graph_client_secret", "secret", "", "Client secret"),
    Field("graph_authority_url", "str", GRAPH_AUTHORITY_URL, "Sign-in authority",
          "Microsoft's by default; another cloud's (or a test sandbox's) otherwise"),
    Field("graph_base_url", "str", GRAPH_BASE_URL, "Microsoft Graph URL",
          "Microsoft's by default; another cloud's (or a test sandbox's) otherwise"),
    Field("graph_ca_bundle", "str", "", "CA certificates for Microsoft Graph (PEM)",
          "Only for an authority or Graph URL whose certificate comes from an internal certificate authority"),
    Field("sync_emails", "choice", "exchange_to_crm", "Emails", choices=SYNC_TYPES_EMAIL),
    Field("sync_calendar", "choice", "two_way", "Calendar", choices=SYNC_TYPES_TWO_WAY),
    Field("sync_tasks", "choice", "two_way", "Tasks", choices=SYNC_TYPES_TWO_WAY),
    Field("sync_interval_minutes", "int", 15, "Sync interval (minutes)", minimum=5, maximum=1440),
    Field("sync_history_days", "int", 30, "History of the first sync (days)", minimum=0, maximum=3650),
    Field("sync_folders", "list", ["inbox", "sentitems"], "Email folders",
          "Distinguished folders (inbox, sentitems) or folder names, one per line"),
    Field("excluded_addresses", "list", [], "Excluded addresses", "One per line: mail to or from them is never stored"),
    Field("excluded_domains", "list", [], "Excluded domains", "One per line, e.g. example.com"),
    Field("email_visibility", "choice", "private", "Email visibility", choices=("private", "team")),
    Field("store_unmatched_email", "bool", False, "Store email that matches no CRM record"),
    Field("conflict_rule", "choice", "exchange_wins", "When both sides changed",
          choices=("exchange_wins", "crm_wins", "latest_wins")),
    Field("other_email_integration", "bool", False, "Another email integration owns email",
          "Email sync then stays off (only one integration may sync a mailbox's email)"),
    Field("default_time_zone", "str", "UTC", "Default time zone"),
    Field("frame_origins", "list", [], "CRM origins allowed to frame the widget",
          "One per line, e.g. https://crm.zoho.com"),
    Field("launch_secret", "secret", "", "Launch secret"),
)
FIELDS_BY_KEY = {field.key: field for field in FIELDS}


class SettingsError(ValueError):
    """Values that cannot be saved; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


class WidgetSettings:
    """The settings in effect: defaults, then the database, then the environment."""

    def __init__(self, values: dict[str, Any], pinned: frozenset[str]):
        self._values = values
        self.pinned = pinned

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def is_set(self, key: str) -> bool:
        """Whether a secret (or any field) has a value."""
        return bool(self._values.get(key))

    @property
    def embedding(self) -> bool:
        """Whether any CRM origin may frame the widget."""
        return bool(self._values["frame_origins"])

    @property
    def email_sync_off_reason(self) -> str | None:
        """Why email sync is off, in words for users; None when it runs."""
        if self._values["other_email_integration"]:
            return "Email sync is off: another email integration of your CRM owns email."
        if self._values["sync_emails"] == "off":
            return "Email sync is turned off by your administrator."
        return None


def _coerce(field: Field, raw: Any) -> Any:
    """A value from a form or the environment in the field's type; ValueError says what is wrong."""
    if field.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("", "0", "false", "no", "off"):
            return False
        raise ValueError("must be on or off")
    if field.kind == "int":
        try:
            number = int(str(raw).strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if field.minimum is not None and number < field.minimum:
            raise ValueError(f"must be at least {field.minimum}")
        if field.maximum is not None and number > field.maximum:
            raise ValueError(f"must be at most {field.maximum}")
        return number
    if field.kind == "list":
        items = raw if isinstance(raw, list) else re.split(r"[\r\n,]+", str(raw))
        return _validate_list(field, [str(item).strip() for item in items if str(item).strip()])
    text = str(raw).strip() if field.kind != "secret" else str(raw)
    if field.kind == "choice" and text not in field.choices:
        raise ValueError(f"must be one of: {', '.join(c or '(automatic)' for c in field.choices)}")
    if field.key == "ews_url" and text:
        return normalise_ews_url(text)
    if field.key in ("graph_authority_url", "graph_base_url"):
        return _https_url(text, field.default)
    if field.key == "default_time_zone":
        _check_time_zone(text)
    return text


def normalise_ews_url(text: str) -> str:
    """An EWS URL from what an administrator typed: a full URL, or a host name (HTTPS and the standard path)."""
    if "://" not in text:
        text = f"https://{text.strip('/')}/EWS/Exchange.asmx"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL or a host name")
    if not parts.path or parts.path == "/":
        text = text.rstrip("/") + "/EWS/Exchange.asmx"
    return text


def _https_url(text: str, default: str) -> str:
    """A Microsoft Graph or sign-in URL: https only (tokens travel to it), without a trailing slash; blank is the
    default."""
    if not text:
        return default
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be an https URL such as " + default)
    return text.rstrip("/")


def _check_time_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file of the zone database
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ValueError(f"'{shown}' is not a time zone name such as Europe/Berlin") from None


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate_list(field: Field, items: list[str]) -> list[str]:
    if field.key == "frame_origins":
        origins = []
        for item in items:
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                    or parts.query or parts.fragment:
                raise ValueError(f"'{item}' is not an origin such as https://crm.example.com")
            if parts.scheme == "http" and not _is_local_host(parts.hostname):
                raise ValueError(f"'{item}' must use https (http only for localhost)")
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return origins
    if field.key == "excluded_domains":
        return [item.lower().lstrip("@") for item in items]
    if field.key == "excluded_addresses":
        for item in items:
            if "@" not in item:
                raise ValueError(f"'{item}' is not an e-mail address")
        return [item.lower() for item in items]
    return items


def _env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    found = {}
    for field in FIELDS:
        raw = env_value(field.env_name, environ)
        if raw is None:
            continue
        try:
            found[field.key] = _coerce(field, raw)
        except ValueError as error:
            raise ConfigError(f"WIDGET_{field.env_name} {error}") from None
    return found


def load() -> WidgetSettings:
    """The settings in effect for this request (read once per request)."""
    if "widget_settings" in g:
        return g.widget_settings
    values = {field.key: field.default for field in FIELDS}
    for row in db.session.scalars(db.select(Setting)):
        field = FIELDS_BY_KEY.get(row.key)
        if field is None:
            continue
        values[row.key] = secret_box.decrypt(row.value) if field.kind == "secret" and row.value else row.value
    overrides = _env_overrides()
    values.update(overrides)
    g.widget_settings = WidgetSettings(values, frozenset(overrides))
    return g.widget_settings


def validate(form: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The typed values of `keys` from a submitted form; SettingsError lists every field that is wrong.

    A blank secret means "keep the stored one", and so does a number missing from the form; a bool missing from the
    form is off (an unchecked box).
    """
    values, errors = {}, {}
    for key in keys:
        field = FIELDS_BY_KEY[key]
        if field.kind == "secret" and not form.get(key):
            continue
        if field.kind == "int" and key not in form:
            continue  # a form (or a script) that does not carry a number leaves it as it is
        raw = form.get(key, False if field.kind == "bool" else "")
        try:
            values[key] = _coerce(field, raw)
        except ValueError as error:
            errors[key] = f"{field.label} {error}."
    if errors:
        raise SettingsError(errors)
    return values


def save(values: dict[str, Any]) -> list[str]:
    """Store settings (the ones the environment pins are left alone); returns the keys changed."""
    current = load()
    changed = []
    for key, value in values.items():
        field = FIELDS_BY_KEY[key]
        if key in current.pinned:
            continue
        stored = secret_box.encrypt(value) if field.kind == "secret" and value else value
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value=stored))
        else:
            row.value = stored
        changed.append(key)
    db.session.commit()
    g.pop("widget_settings", None)
    return changed
