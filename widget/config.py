"""Deployment settings: typed, from WIDGET_* environment variables and the instance folder.

A secret can be given directly (WIDGET_SECRET_KEY) or as a file (WIDGET_SECRET_KEY_FILE), the form that
container secrets and systemd credentials use. Without either, the widget generates the secret key and the
encryption key on first start and keeps them in the instance folder, readable by the owner only (0600).
Settings an administrator manages in the admin pages live in widget/settings.py; they can also be pinned
from the environment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet


class ConfigError(ValueError):
    """A setting from the environment that cannot be used; the message names it."""


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """WIDGET_<NAME>, or the content of the file named by WIDGET_<NAME>_FILE (trailing newline removed)."""
    environ = os.environ if environ is None else environ
    direct = environ.get(f"WIDGET_{name}")
    path = environ.get(f"WIDGET_{name}_FILE")
    if direct is not None and path is not None:
        raise ConfigError(f"set WIDGET_{name} or WIDGET_{name}_FILE, not both")
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ConfigError(f"WIDGET_{name}_FILE: cannot read {path}: {error.strerror}") from None
    return direct


def _instance_secret(instance: Path, name: str, make: callable) -> str:
    """Read a generated secret from the instance folder, creating it (0600) on first start."""
    path = instance / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    value = make()
    # O_EXCL: two workers starting at once must not both write; the loser reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


@dataclass(frozen=True)
class Settings:
    """What the deployment decides: where the data lives and the keys that protect it."""

    instance_path: Path
    database_url: str
    secret_key: str
    encryption_keys: tuple[str, ...]
    ratelimit_storage_url: str
    public_url: str | None
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed

    @classmethod
    def load(cls, instance_path: Path, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment; generate what is missing in the instance folder."""
        instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        database_url = env_value("DATABASE_URL", environ)
        if not database_url:
            database_url = f"sqlite:///{instance_path / 'widget.sqlite3'}"
        _create_sqlite_file_owner_only(database_url)
        secret_key = env_value("SECRET_KEY", environ) or _instance_secret(
            instance_path, "secret_key", lambda: secrets.token_urlsafe(48)
        )
        keys_text = env_value("ENCRYPTION_KEYS", environ) or _instance_secret(
            instance_path, "encryption_key", lambda: Fernet.generate_key().decode()
        )
        keys = tuple(key.strip() for key in keys_text.split(",") if key.strip())
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError("WIDGET_ENCRYPTION_KEYS holds a key that is not a Fernet key") from None
        return cls(
            instance_path=instance_path,
            database_url=database_url,
            secret_key=secret_key,
            encryption_keys=keys,
            ratelimit_storage_url=env_value("RATELIMIT_STORAGE_URL", environ) or "memory://",
            public_url=env_value("PUBLIC_URL", environ),
            trusted_proxies=_env_count("TRUSTED_PROXIES", environ),
        )


def _create_sqlite_file_owner_only(database_url: str) -> None:
    """Create a SQLite database file empty and owner-only (0600) before SQLite opens it, which would otherwise follow
    the umask (0644: mail readable by every account of the machine). SQLite gives its -wal and -shm files the
    database file's mode, so they are owner-only too."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError("WIDGET_DATABASE_URL is not a database URL") from None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return
    try:
        os.close(os.open(url.database, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as error:
        raise ConfigError(f"WIDGET_DATABASE_URL: cannot create {url.database}: {error.strerror}") from None


def _env_count(name: str, environ: Mapping[str, str] | None) -> int:
    value = (env_value(name, environ) or "0").strip()
    if not value.isdigit() or int(value) > 10:
        raise ConfigError(f"WIDGET_{name} must be a number of proxies from 0 to 10, not {value!r}")
    return int(value)
