"""What each login wants to be told on the bot's own schedule (/notifications): quiet hours,
and kinds of message muted about one patient. No row means the defaults: everything on,
quiet hours 21:00-08:00."""

from __future__ import annotations

import enum

from storage.db import Reads, Writes, fetch_all, fetch_one
from storage.models import Row

DEFAULT_QUIET_FROM = 21 * 60  # minutes after midnight, in the practice's time zone
DEFAULT_QUIET_UNTIL = 8 * 60


class Topic(enum.StrEnum):
    """A kind of message a login can turn off, per patient."""

    REMINDERS = "reminders"  # appointment reminders (and "moved to …" notices)
    INVOICES = "invoices"  # a new invoice
    RESULTS = "results"  # a new result or other clinical record


class Item(enum.StrEnum):
    """What a new-item notice is about."""

    INVOICE = "invoice"
    RECORD = "record"  # a result or other clinical record

    @property
    def topic(self) -> Topic:
        return Topic.INVOICES if self is Item.INVOICE else Topic.RESULTS

    @property
    def table(self) -> str:
        return "invoices" if self is Item.INVOICE else "clinical_records"


class QuietHours(Row):
    on: bool = True
    start: int = DEFAULT_QUIET_FROM  # minutes after midnight
    end: int = DEFAULT_QUIET_UNTIL


async def quiet_hours(conn: Reads, telegram_user_id: int) -> QuietHours:
    row = await fetch_one(
        conn,
        "SELECT quiet, quiet_from, quiet_until FROM notification_settings"
        " WHERE telegram_user_id = ?",
        (telegram_user_id,),
    )
    if row is None:
        return QuietHours()
    return QuietHours(on=bool(row[0]), start=row[1], end=row[2])


async def set_quiet_hours(conn: Writes, telegram_user_id: int, quiet: QuietHours) -> None:
    await conn.execute(
        "INSERT INTO notification_settings (telegram_user_id, quiet, quiet_from, quiet_until)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (telegram_user_id) DO UPDATE SET"
        " quiet = excluded.quiet, quiet_from = excluded.quiet_from,"
        " quiet_until = excluded.quiet_until",
        (telegram_user_id, int(quiet.on), quiet.start, quiet.end),
    )


async def muted(conn: Reads, telegram_user_id: int, about_id: int, topic: Topic) -> bool:
    row = await fetch_one(
        conn,
        "SELECT 1 FROM notification_mutes WHERE telegram_user_id = ? AND about_id = ?"
        " AND topic = ?",
        (telegram_user_id, about_id, topic),
    )
    return row is not None


async def mutes(conn: Reads, telegram_user_id: int) -> set[tuple[int, Topic]]:
    """Every (patient, topic) this login turned off."""
    rows = await fetch_all(
        conn,
        "SELECT about_id, topic FROM notification_mutes WHERE telegram_user_id = ?",
        (telegram_user_id,),
    )
    return {(row[0], Topic(row[1])) for row in rows}


async def set_muted(
    conn: Writes, telegram_user_id: int, about_id: int, topic: Topic, mute: bool
) -> None:
    if mute:
        await conn.execute(
            "INSERT INTO notification_mutes (telegram_user_id, about_id, topic) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (telegram_user_id, about_id, topic),
        )
    else:
        await conn.execute(
            "DELETE FROM notification_mutes WHERE telegram_user_id = ? AND about_id = ?"
            " AND topic = ?",
            (telegram_user_id, about_id, topic),
        )
