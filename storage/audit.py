"""The audit log: who did what, for whom, and whether it was allowed."""

from __future__ import annotations

import aiosqlite

from storage.db import now
from storage.models import AuditEvent


async def record(
    conn: aiosqlite.Connection,
    action: str,
    *,
    outcome: str = "ok",
    actor_patient_id: int | None = None,
    actor_telegram_id: int | None = None,
    subject_patient_id: int | None = None,
    ref_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Call inside the transaction that made the change: the event and the change land together."""
    await conn.execute(
        "INSERT INTO audit_events (at, actor_patient_id, actor_telegram_id, subject_patient_id,"
        " action, outcome, ref_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now(),
            actor_patient_id,
            actor_telegram_id,
            subject_patient_id,
            action,
            outcome,
            ref_id,
            detail,
        ),
    )


async def for_subject(
    conn: aiosqlite.Connection, subject_patient_id: int, limit: int = 50, offset: int = 0
) -> list[AuditEvent]:
    cur = await conn.execute(
        "SELECT * FROM audit_events WHERE subject_patient_id = ? ORDER BY at DESC, id DESC "
        "LIMIT ? OFFSET ?",
        (subject_patient_id, limit, offset),
    )
    return [AuditEvent.model_validate(dict(row)) for row in await cur.fetchall()]


async def by_action(conn: aiosqlite.Connection, action: str) -> list[AuditEvent]:
    cur = await conn.execute("SELECT * FROM audit_events WHERE action = ? ORDER BY id", (action,))
    return [AuditEvent.model_validate(dict(row)) for row in await cur.fetchall()]


async def page_for_subject(
    conn: aiosqlite.Connection, subject_patient_id: int, limit: int, offset: int
) -> list[tuple[AuditEvent, str | None]]:
    """Newest first, each with the acting patient's name (None for staff or strangers)."""
    cur = await conn.execute(
        "SELECT e.*, p.full_name AS actor_name FROM audit_events e"
        " LEFT JOIN patients p ON p.id = e.actor_patient_id"
        " WHERE e.subject_patient_id = ? ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?",
        (subject_patient_id, limit, offset),
    )
    rows = []
    for row in await cur.fetchall():
        data = dict(row)
        name = data.pop("actor_name")
        rows.append((AuditEvent.model_validate(data), name))
    return rows
