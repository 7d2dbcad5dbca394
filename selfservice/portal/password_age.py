"""A change refused as too soon after the last one says when it becomes possible.

Directories refuse a holder's own change made before their minimum age (AD's default is
one day) with words like "too young", or, in Windows AD, with no reason at all. The
directory's rules and its record of the last change say when the next change can be made,
so the person is told that moment, in the district's time, before anything is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import get_locale

from selfservice.directory.interfaces import Account, Directory, DirectoryError
from selfservice.i18n import _
from selfservice.security import Security


def changeable_from(
    directory: Directory, security: Security, account: Account, now: datetime
) -> datetime | None:
    """The moment the holder may change their password again, or None when they may now."""
    rules = security.directory_rules.for_account(account) if security.directory_rules else None
    if rules is None or not rules.min_age_seconds:
        return None
    try:
        changed = directory.password_changed_at(account)
    except DirectoryError:
        return None  # the directory will say no itself, if it must
    if changed is None:
        return None
    until = changed + timedelta(seconds=rules.min_age_seconds)
    return until if until > now else None


def too_soon_message(until: datetime, time_zone: str) -> str:
    """The refusal, translated, with the moment in the district's time zone."""
    zone = ZoneInfo(time_zone)
    when = format_datetime(until.astimezone(zone), "medium", tzinfo=zone, locale=get_locale())
    return _(
        "The password was changed too recently. It can be changed again from %(when)s (%(zone)s time).",
        when=when,
        zone=time_zone,
    )
