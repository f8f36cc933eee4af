"""The reads behind reminders and new-item notices: who might be told about whose
appointment or new item. bot/reminders.py applies the access rules to what these return;
the renderers check everything again when a message is sent.

Only living patients are told anything, and nothing is said about a patient who has died
(patients.deceased, from the practice's records); only people with a login can be reached.
"""

from __future__ import annotations

from typing import NamedTuple

from storage.db import Reads, fetch_all, fetch_one
from storage.notifications import Topic
from storage.outbox import Kind
from storage.vocabulary import Level, Role


# One reminder per appointment, start, offset and recipient, however often the sweep runs and
# whichever process runs it (the outbox's dedupe key is unique). The start is part of it: an
# appointment the practice moves is reminded of again at its new time.
# (reminder_candidates builds the same key in SQL.)
def reminder_key(appointment_id: int, starts_at: int, offset: int, recipient_id: int) -> str:
    return f"remind:{appointment_id}:{starts_at}:{offset}:{recipient_id}"


class Candidate(NamedTuple):
    """Someone who may be reminded of an appointment: the patient themself (level and role
    None) or a patient with an active grant on them."""

    appointment_id: int
    subject_id: int
    starts_at: int
    recipient_id: int
    level: Level | None
    role: Role | None


def _recipients(select: str, source: str, subject: str, where: str) -> str:
    """The patient themself and everyone with an active grant on them (recipient, level,
    role after `select`), each with a login, alive, and not muting this topic about this
    patient (the topic is bound after each half's own parameters). `where` names the
    recipient as {recipient}."""
    mute = (
        "NOT EXISTS (SELECT 1 FROM notification_mutes m WHERE"
        " m.telegram_user_id = l.telegram_user_id AND m.about_id = s.id AND m.topic = ?)"
    )
    return (
        f"SELECT {select}, s.id, NULL, NULL FROM {source}"
        f" JOIN patients s ON s.id = {subject} AND s.deceased = 0"
        " JOIN logins l ON l.patient_id = s.id"
        f" WHERE {where.format(recipient='s.id')} AND {mute}"
        " UNION ALL"
        f" SELECT {select}, g.accessor_id, g.level, g.role FROM {source}"
        f" JOIN patients s ON s.id = {subject} AND s.deceased = 0"
        # CROSS JOIN keeps the appointments of the window outermost: without it SQLite walks
        # every active grant, whose number grows with the practice, not with the day.
        " CROSS JOIN grants g ON g.subject_id = s.id AND g.status = 'active'"
        " JOIN patients r ON r.id = g.accessor_id AND r.deceased = 0"
        " JOIN logins l ON l.patient_id = g.accessor_id"
        f" WHERE {where.format(recipient='g.accessor_id')} AND {mute}"
    )


def _level(value: str | None) -> Level | None:
    return Level(value) if value else None


def _role(value: str | None) -> Role | None:
    return Role(value) if value else None


async def reminder_candidates(conn: Reads, after: int, until: int, offset: int) -> list[Candidate]:
    """Appointments (booked or confirmed) starting in (after, until], with each person who
    may be reminded of them `offset` seconds before and has not been queued that reminder."""
    sql = _recipients(
        "a.id, a.patient_id, a.starts_at",
        "appointments a",
        "a.patient_id",
        "a.starts_at > ? AND a.starts_at <= ? AND a.status IN ('booked', 'confirmed')"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key ="
        " 'remind:' || a.id || ':' || a.starts_at || ':' || CAST(? AS BIGINT) || ':'"
        " || {recipient})",
    )
    half = (after, until, offset, Topic.REMINDERS)
    rows = await fetch_all(conn, sql + " ORDER BY 3, 1, 4", (*half, *half))
    return [
        Candidate(row[0], row[1], row[2], row[3], _level(row[4]), _role(row[5])) for row in rows
    ]


async def told_about(
    conn: Reads, subject_id: int, topic: Topic
) -> list[tuple[int, Level | None, Role | None]]:
    """Whoever may be told something new about this patient: (recipient, level, role) for
    the patient themself (None, None) and each holder of an active grant."""
    sql = _recipients("1", "(SELECT 1) one", "?", "1 = 1")
    rows = await fetch_all(conn, sql, (subject_id, topic, subject_id, topic))
    return [(row[1], _level(row[2]), _role(row[3])) for row in rows]


async def is_deceased(conn: Reads, patient_id: int) -> bool:
    """True when the practice's records say this patient has died (or there is no such
    patient: nothing is said about, or to, someone unknown)."""
    row = await fetch_one(conn, "SELECT deceased FROM patients WHERE id = ?", (patient_id,))
    return row is None or bool(row[0])


async def item_id(conn: Reads, table: str, fhir_id: str) -> int | None:
    """The row imported from this resource, in `invoices` or `clinical_records`."""
    assert table in ("invoices", "clinical_records")
    row = await fetch_one(conn, f"SELECT id FROM {table} WHERE fhir_id = ?", (fhir_id,))
    return int(row[0]) if row else None


async def item_exists(conn: Reads, table: str, item: int, patient_id: int) -> str | None:
    """The record's kind (or "invoice"), while it is still this patient's; else None."""
    assert table in ("invoices", "clinical_records")
    column = "kind" if table == "clinical_records" else "'invoice'"
    row = await fetch_one(
        conn, f"SELECT {column} FROM {table} WHERE id = ? AND patient_id = ?", (item, patient_id)
    )
    return str(row[0]) if row else None


async def appointment_before_import(conn: Reads, fhir_id: str) -> tuple[int, int, str] | None:
    """(id, starts_at, status) of the appointment stored from this resource, if any."""
    row = await fetch_one(
        conn, "SELECT id, starts_at, status FROM appointments WHERE fhir_id = ?", (fhir_id,)
    )
    return (row[0], row[1], row[2]) if row else None


async def reminded(conn: Reads, appointment_id: int) -> list[int]:
    """The patients a reminder of this appointment reached."""
    rows = await fetch_all(
        conn,
        "SELECT DISTINCT patient_id FROM outbox WHERE ref_id = ? AND kind = ?"
        " AND status = 'sent' AND patient_id IS NOT NULL ORDER BY patient_id",
        (appointment_id, Kind.REMINDER),
    )
    return [row[0] for row in rows]


async def dropped_since(conn: Reads, since: int, kinds: tuple[Kind, ...]) -> dict[str, int]:
    """How many rows of these kinds were dropped since then, by why."""
    marks = ",".join("?" * len(kinds))
    rows = await fetch_all(
        conn,
        "SELECT coalesce(dropped_why, 'other'), count(*) FROM outbox"
        f" WHERE dropped_at >= ? AND kind IN ({marks}) GROUP BY 1",
        (since, *kinds),
    )
    return {row[0]: row[1] for row in rows}
