"""Access logs without launch tokens: a token in a logged `/launch?token=...` line could be replayed by whoever reads
the log before it expires, so the query of a logged /launch URL is removed (the development server's log and
gunicorn's access log alike)."""

from __future__ import annotations

import logging
import re
from typing import Any

ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
_LAUNCH_QUERY = re.compile(r"(/launch/?)\?[^\s\"]*")
REMOVED = r"\1?[query removed]"


def _clean(value: Any) -> Any:
    return _LAUNCH_QUERY.sub(REMOVED, value) if isinstance(value, str) else value


class LaunchQueryFilter(logging.Filter):
    """Removes the query of /launch URLs from a record's message and arguments (a tuple, or gunicorn's dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, dict):
            args = {key: _clean(value) for key, value in record.args.items()}
            if str(args.get("U", "")).rstrip("/") == "/launch":
                args["q"] = "[query removed]"  # gunicorn's %(q)s atom: the query alone
            record.args = args
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(value) for value in record.args)
        return True


def keep_launch_tokens_out_of_access_logs() -> None:
    """Install the filter on the access loggers of the servers the widget runs under (once per process)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, LaunchQueryFilter) for existing in logger.filters):
            logger.addFilter(LaunchQueryFilter())
