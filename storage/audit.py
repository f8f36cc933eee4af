"""The audit log: who did what, for whom, and whether it was allowed."""

from __future__ import annotations

from storage.db import Reads, Writes, fetch_all, now
from storage.models import AuditEvent


async def record(
    conn: Writes,
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
    conn: Reads, subject_patient_id: int, limit: int = 50, offset: int = 0
) -> list[AuditEvent]:
    rows = await fetch_all(
        conn,
        "SELECT * FROM audit_events WHERE subject_patient_id = ? ORDER BY at DESC, id DESC "
        "LIMIT ? OFFSET ?",
        (subject_patient_id, limit, offset),
    )
    return [AuditEvent.model_validate(dict(row)) for row in rows]


async def by_action(conn: Reads, action: str) -> list[AuditEvent]:
    rows = await fetch_all(
        conn, "SELECT * FROM audit_events WHERE action = ? ORDER BY id", (action,)
    )
    return [AuditEvent.model_validate(dict(row)) for row in rows]


async def page_for_subject(
    conn: Reads, subject_patient_id: int, limit: int, offset: int
) -> list[tuple[AuditEvent, str | None]]:
    """Newest first, each with the acting patient's name (None for staff or strangers)."""
    rows = await fetch_all(
        conn,
        "SELECT e.*, p.full_name AS actor_name FROM audit_events e"
        " LEFT JOIN patients p ON p.id = e.actor_patient_id"
        " WHERE e.subject_patient_id = ? ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?",
        (subject_patient_id, limit, offset),
    )
    events = []
    for row in rows:
        data = dict(row)
        name = data.pop("actor_name")
        events.append((AuditEvent.model_validate(data), name))
    return events
