"""Confirm and Cancel made in the bot, kept for the practice: told to the practitioner,
kept across re-imports unless the practice's own record changed after it, and exported as
FHIR (bot/appointment_changes.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storage.db import Reads, Writes, fetch_all, fetch_one, now
from storage.models import Row


class Change(Row):
    id: int
    appointment_id: int
    status: str  # confirmed | cancelled
    actor_patient_id: int | None
    at: int


class Exported(Row):
    """A change with what the practice's system knows the appointment and patient by."""

    change: Change
    appointment_fhir_id: str | None
    patient_fhir_id: str | None


_COLUMNS = "c.id, c.appointment_id, c.status, c.actor_patient_id, c.at"


_NAMES = ("id", "appointment_id", "status", "actor_patient_id", "at")


def _change(row: Iterable[Any]) -> Change:
    return Change.model_validate(dict(zip(_NAMES, tuple(row)[: len(_NAMES)], strict=True)))


async def record(
    conn: Writes, appointment_id: int, status: str, actor_patient_id: int | None
) -> Change:
    row = await fetch_one(
        conn,
        "INSERT INTO appointment_changes (appointment_id, status, actor_patient_id, at)"
        " VALUES (?, ?, ?, ?) RETURNING id",
        (appointment_id, status, actor_patient_id, now()),
    )
    assert row is not None
    found = await get(conn, row[0])
    assert found is not None
    return found


async def get(conn: Reads, change_id: int) -> Change | None:
    row = await fetch_one(
        conn, f"SELECT {_COLUMNS} FROM appointment_changes c WHERE c.id = ?", (change_id,)
    )
    return _change(row) if row else None


async def standing(conn: Reads, appointment_id: int) -> Change | None:
    """The bot's latest change to this appointment, unless the practice's record has
    changed since."""
    row = await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM appointment_changes c WHERE c.appointment_id = ?"
        " AND c.superseded_at IS NULL ORDER BY c.id DESC LIMIT 1",
        (appointment_id,),
    )
    return _change(row) if row else None


async def supersede(conn: Writes, appointment_id: int) -> None:
    """The practice's record changed after the bot's changes: theirs stands."""
    await conn.execute(
        "UPDATE appointment_changes SET superseded_at = ?"
        " WHERE appointment_id = ? AND superseded_at IS NULL",
        (now(), appointment_id),
    )


async def since(conn: Reads, at: int) -> list[Exported]:
    """The latest standing change of each appointment changed at or after `at`, oldest first."""
    rows = await fetch_all(
        conn,
        f"SELECT {_COLUMNS}, a.fhir_id, p.fhir_id FROM appointment_changes c"
        " JOIN appointments a ON a.id = c.appointment_id"
        " JOIN patients p ON p.id = a.patient_id"
        " WHERE c.at >= ? AND c.superseded_at IS NULL AND c.id = (SELECT max(id)"
        " FROM appointment_changes WHERE appointment_id = c.appointment_id)"
        " ORDER BY c.at, c.id",
        (at,),
    )
    return [
        Exported(change=_change(row), appointment_fhir_id=row[5], patient_fhir_id=row[6])
        for row in rows
    ]


async def practitioners_named(conn: Reads, name: str | None) -> list[int]:
    """The Telegram ids of registered practitioners by this name (as an appointment shows
    it): case and spacing do not count."""
    if not name or not name.strip():
        return []
    rows = await fetch_all(
        conn,
        "SELECT telegram_user_id FROM practitioners WHERE lower(trim(name)) = lower(?)"
        " ORDER BY telegram_user_id",
        (" ".join(name.split()),),
    )
    return [row[0] for row in rows]
