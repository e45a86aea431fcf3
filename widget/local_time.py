"""The user's time zone: which zone a user sees times in, the zones they may choose, and times shown with the zone
named. Everything is stored in UTC; only what people read and type is local.

`users.time_zone` cannot be empty, and its column default "UTC" means "not chosen": such a user sees the
deployment's default zone (Admin → Sync). A user who picks UTC on purpose stores "Etc/UTC", the same zone under its
canonical name, so that the choice sticks when the default changes.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

NOT_CHOSEN = "UTC"
CHOSEN_UTC = "Etc/UTC"
_REGIONS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/", "Europe/",
            "Indian/", "Pacific/")


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone of an IANA name, or None when it is not one."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # OSError: a name too long for a file name
        return None


def user_zone_name(user: Any, current: Any) -> str:
    """The IANA name of the zone `user` sees: their own choice, else the deployment's default, else UTC."""
    chosen = getattr(user, "time_zone", None)
    if chosen and chosen != NOT_CHOSEN and zone_or_none(chosen) is not None:
        return chosen
    default = getattr(current, "default_time_zone", None)
    return default if zone_or_none(default) is not None else NOT_CHOSEN


def user_zone(user: Any, current: Any) -> ZoneInfo:
    """The zone `user` sees times in (see user_zone_name)."""
    return ZoneInfo(user_zone_name(user, current))


def stored_choice(name: str) -> str:
    """What to store for a zone a user picked (UTC under its canonical name: see the module's docstring)."""
    return CHOSEN_UTC if name in (NOT_CHOSEN, CHOSEN_UTC) else name


@cache
def zone_choices() -> tuple[str, ...]:
    """The zones a user may pick: the IANA names of places (no legacy aliases such as US/Eastern), and UTC."""
    return tuple(sorted(name for name in available_timezones() if name.startswith(_REGIONS))) + (CHOSEN_UTC,)


def shown(moment: datetime | None, zone: tzinfo, pattern: str = "%a %d %b %Y, %H:%M") -> str:
    """A stored instant as the user reads it, with the zone's abbreviation (e.g. "Mon 15 Mar 2027, 14:00 CET")."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local.strftime(pattern)} {local.tzname()}"


def in_user_zone(moment: datetime | None) -> str:
    """Jinja filter `in_user_zone`: an instant in the signed-in user's zone, the zone named."""
    from flask_login import current_user

    from . import settings

    return shown(moment, user_zone(current_user, settings.load()))
