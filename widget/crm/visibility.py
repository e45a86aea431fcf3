"""Who may see which synced mail and meetings: the access rules, apart from the queries that list them.

Users see their own mail and calendar. With the administrator's team-wide visibility they also see their colleagues'
mail and meetings that belong to a CRM record — except items their owner marked Private or Confidential in Outlook,
which stay their owner's alone whatever the setting (as Exchange itself treats them). A colleague's mail that
matches no record stays private even then.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, false, or_, select

from ..extensions import db
from ..models import CalendarItem, CrmAddress, Email, EmailAddress, User


def mail_visible_to(user: User, team_wide: bool) -> ColumnElement[bool]:
    """Which stored emails `user` may see (a condition on Email)."""
    if not team_wide:
        return Email.user_id == user.id
    return or_(Email.user_id == user.id, Email.is_private.is_(false()))


def meetings_visible_to(user: User, team_wide: bool) -> ColumnElement[bool]:
    """Which stored calendar items `user` may see (a condition on CalendarItem)."""
    if not team_wide:
        return CalendarItem.user_id == user.id
    return or_(CalendarItem.user_id == user.id, CalendarItem.is_private.is_(false()))


def visible_email(user: User, email_id: int, *, team_wide: bool = False) -> Email | None:
    """The email `user` may open: their own; with team-wide visibility also a colleague's that belongs to a CRM
    record by an address other than the colleague's own and that its owner did not mark private. None for anything
    else."""
    email = db.session.get(Email, email_id)
    if email is None or email.user_id == user.id:
        return email
    if not team_wide or email.is_private:
        return None
    owner = db.session.scalar(select(User.email).where(User.id == email.user_id))
    on_a_record = db.session.scalar(select(exists().where(
        EmailAddress.email_id == email.id, EmailAddress.address != owner,
        EmailAddress.address.in_(select(CrmAddress.address)))))
    return email if on_a_record else None
