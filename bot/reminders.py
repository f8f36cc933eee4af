"""The bot speaks first: appointment reminders, "moved to …" notices and new-item notices.

What is owed is queued here, in the transaction that finds it (the sweep, an import); who is
told is chosen with the access rules (bot/access.py) and queued through the notifier, one
outbox row per recipient with a dedupe key, so each goes once across restarts and workers.
Each row is worded when it is sent (handlers/reminders.py), and everything is checked again
then: access revoked since, appointment cancelled or moved, patient deceased, muted, quiet
hours.

Reminders come due in the sweep: `queue_due_reminders(db, settings, at)` is what it calls
(and `python -m bot remind [--at ISO] [--dry-run]` until it exists). An appointment gets one
reminder per offset (PORTAL_REMINDERS, default 24h,2h), the one whose window it is in: with
24h and 2h, one starting in 2-24 hours gets the 24-hour reminder, one within 2 hours the
2-hour one, so a sweep that first sees an appointment an hour ahead sends one reminder, not
two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby

from bot import access
from bot.access import Area
from bot.events import AppointmentComing, AppointmentMoved, ItemAdded
from bot.notifier import notify
from bot.settings import Settings
from storage import Database, reminders
from storage.db import Writes, now
from storage.notifications import Item
from storage.outbox import Kind

DAY = 86400
# Sent on the bot's own schedule: counted when dropped (blocked, quiet hours, stale).
SCHEDULED = (Kind.REMINDER, Kind.APPOINTMENT_MOVED, Kind.NEW_ITEM)
_AREA = {Item.INVOICE: Area.INVOICES, Item.RECORD: Area.RECORDS}


@dataclass(frozen=True)
class ReminderReport:
    """What one sweep of reminders did (or, dry, would do)."""

    at: int
    queued: dict[int, int] = field(default_factory=dict)  # offset -> messages queued
    appointments: int = 0  # appointments with at least one reminder queued
    dropped: dict[str, int] = field(default_factory=dict)  # the last day's, by why
    dry_run: bool = False

    @property
    def messages(self) -> int:
        return sum(self.queued.values())

    def line(self) -> str:
        verb = "would queue" if self.dry_run else "queued"
        parts = ", ".join(f"{n} at {_offset(o)}" for o, n in self.queued.items() if n)
        text = f"{verb} {self.messages} reminders for {self.appointments} appointments"
        text += f" ({parts})" if parts else ""
        if self.dropped:
            counts = ", ".join(f"{why} {n}" for why, n in sorted(self.dropped.items()))
            text += f"; not sent in the last day: {counts}"
        return text


def _offset(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def windows(offsets: Iterable[int], at: int) -> list[tuple[int, int, int]]:
    """(offset, after, until) for each reminder: an appointment starting in (after, until]
    is due the reminder of that offset, and of no longer one."""
    ordered = sorted(set(offsets), reverse=True)
    shorter = [*ordered[1:], 0]  # one longer than `ordered` when there are no offsets
    return [(o, at + s, at + o) for o, s in zip(ordered, shorter, strict=False)]


async def queue_due_reminders(
    db: Database, settings: Settings, at: int, *, dry_run: bool = False
) -> ReminderReport:
    """Queue every reminder due at `at` (seconds since the epoch) that is not queued yet:
    for the patient (when they have a login) and everyone whose access includes their
    appointments right now. Safe to run as often as wanted, from any number of processes."""
    queued: dict[int, int] = {}
    appointments: set[int] = set()
    async with db.transaction() as conn:
        for offset, after, until in windows(settings.reminder_offsets, at):
            candidates = await reminders.reminder_candidates(conn, after, until, offset)
            allowed = [c for c in candidates if access.may_be_told_as(c.level, Area.APPOINTMENTS)]
            queued[offset] = len(allowed)
            for (appointment_id, starts_at), group in groupby(
                allowed, key=lambda c: (c.appointment_id, c.starts_at)
            ):
                appointments.add(appointment_id)
                if dry_run:
                    continue
                recipients = tuple(c.recipient_id for c in group)
                await notify(conn, AppointmentComing(appointment_id, starts_at, offset, recipients))
        dropped = await reminders.dropped_since(conn, at - DAY, SCHEDULED)
    return ReminderReport(at, queued, len(appointments), dropped, dry_run)


# --- After an import (bot/fhir.py calls these in its transaction) ------------------------


async def tell_new_items(conn: Writes, items: Iterable[tuple[int, Item, int]]) -> None:
    """A notice for each new (patient, item, id), to the patient and each person whose
    access includes it: an invoice to everyone with access, a record to Clinical only."""
    for subject_id, item, item_id in items:
        told = await reminders.told_about(conn, subject_id, item.topic)
        recipients = tuple(
            recipient
            for recipient, level, _role in told
            if access.may_be_told_as(level, _AREA[item])
        )
        if recipients:
            await notify(conn, ItemAdded(subject_id, item, item_id, recipients))


async def tell_if_moved(
    conn: Writes, before: tuple[int, int, str] | None, starts_at: int, status: str
) -> None:
    """An import moved an appointment (before: its id, old start and status): whoever was
    reminded of it hears where it went. Its queued reminders for the old time are dropped
    when they come up, and the sweep reminds of the new time."""
    if before is None or before[1] == starts_at or status == "cancelled" or starts_at <= now():
        return
    recipients = await reminders.reminded(conn, before[0])
    if recipients:
        await notify(conn, AppointmentMoved(before[0], starts_at, tuple(recipients)))
