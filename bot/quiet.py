"""Quiet hours: what the bot sends on its own schedule (reminders, new-item and safeguarding
notices) waits until a login's quiet hours end, in the practice's time zone; a short
reminder (the 2-hour one) is dropped instead, as it would be late. Request cards and replies
are not scheduled and go at once.

A renderer asks `quiet_until` when its row is about to go, so a backlog that runs into the
evening waits too, and a change in /notifications counts from the next message on.
"""

from __future__ import annotations

import datetime as dt

from storage import notifications
from storage.db import Reads
from storage.notifications import QuietHours

# A reminder this close to its appointment means "now or never": in quiet hours it is
# dropped rather than held (the 2-hour one; a 24-hour one waits for the morning).
SHORT_REMINDER_S = 12 * 3600


def quiet_end(quiet: QuietHours, at: int, tz: dt.tzinfo) -> int | None:
    """When the quiet hours that `at` falls in end; None when it falls outside them."""
    if not quiet.on or quiet.start == quiet.end:
        return None
    local = dt.datetime.fromtimestamp(at, tz)
    minute = local.hour * 60 + local.minute
    if quiet.start < quiet.end:  # e.g. 01:00-06:00, within one day
        inside = quiet.start <= minute < quiet.end
    else:  # e.g. 21:00-08:00, across midnight
        inside = minute >= quiet.start or minute < quiet.end
    if not inside:
        return None
    day = local.date() if minute < quiet.end else local.date() + dt.timedelta(days=1)
    end = dt.datetime.combine(day, dt.time(quiet.end // 60, quiet.end % 60), tz)
    return int(end.timestamp())


async def quiet_until(conn: Reads, telegram_user_id: int, at: int, tz: dt.tzinfo) -> int | None:
    """When this login's quiet hours end, if `at` is in them (for any scheduled notice)."""
    return quiet_end(await notifications.quiet_hours(conn, telegram_user_id), at, tz)


def clock_text(minutes: int) -> str:
    """'21:00': how quiet hours are shown, the same in every language."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
