"""Which processes serve this instance folder, so that the widget can say when per-process state is not shared.

Flask-Limiter's memory storage counts requests in each process: with several web workers, every limit is
multiplied by their number. Each serving process leaves its pid in the instance folder on its first request; a
process that finds another live one while the limits live in memory logs a warning that says what to set.
(The sign-in budget per Exchange identity is in the database, shared by every process whatever this says.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
WARNING = ("Rate limits are kept in this process's memory (WIDGET_RATELIMIT_STORAGE_URL is memory://), and %d "
           "processes serve this widget: each counts on its own, so every limit is multiplied. Set "
           "WIDGET_RATELIMIT_STORAGE_URL to a shared storage such as redis://host:6379 (see the README).")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serving_processes(instance_path: str) -> int:
    """Record this process as serving `instance_path`; returns how many live processes do (this one included)."""
    folder = Path(instance_path) / "workers"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / str(os.getpid())).touch()
    alive = 0
    for entry in folder.iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            alive += 1
        else:
            entry.unlink(missing_ok=True)
    return alive


def warn_if_limits_are_not_shared(instance_path: str, storage_url: str) -> None:
    """Log a warning when rate limits live in memory and another process serves the same instance."""
    if not storage_url.startswith("memory://"):
        return
    count = serving_processes(instance_path)
    if count > 1:
        log.warning(WARNING, count)
