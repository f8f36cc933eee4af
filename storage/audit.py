"""The audit log: who did what, for whom, and whether it was allowed."""

from __future__ import annotations

from storage.db import Reads, Writes, fetch_all, now
from storage.models import AuditEvent, LogEntry
from storage.vocabulary import Action, Attempt

__all__ = ["ABOUT_A_GRANT", "Action", "Attempt", "record"]


# The refused attempts whose ref_id names a grant (the others name the patient).
ABOUT_A_GRANT = frozenset(
    {
        Attempt.NOT_DECIDER,
        Attempt.REVOKE,
        Attempt.CHANGE,
        Attempt.LEAVE,
        Attempt.WITHDRAW,
        Attempt.VIEW,
        Attempt.RENEW,
        Attempt.KEEP,
    }
)


async def record(
    conn: Writes,
    action: Action,
    *,
    outcome: str = "ok",
    actor_patient_id: int | None = None,
    actor_telegram_id: int | None = None,
    subject_patient_id: int | None = None,
    ref_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Call inside the transaction that made the change: the event and the change land together.
    Only an Action: an event the log has no words for would show as a code."""
    action = Action(action)  # a plain string that names no Action fails here, in every test
    await conn.execute(
        "INSERT INTO audit_events (at, actor_patient_id, actor_telegram_id, subject_patient_id,"
        " action, outcome, ref_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now(),
            actor_patient_id,
            actor_telegram_id,
            subject_patient_id,
            action.value,
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


async def by_action(conn: Reads, action: Action | str) -> list[AuditEvent]:
    rows = await fetch_all(
        conn, "SELECT * FROM audit_events WHERE action = ? ORDER BY id", (action,)
    )
    return [AuditEvent.model_validate(dict(row)) for row in rows]


async def page_for_subject(
    conn: Reads, subject_patient_id: int, limit: int, offset: int
) -> list[LogEntry]:
    """Newest first, each with the acting patient's name and, for an event whose ref_id
    may name one of this subject's grants, that grant's accessor (the caller knows from
    the action whether it does)."""
    rows = await fetch_all(
        conn,
        "SELECT e.*, p.full_name AS actor_name, a.id AS accessor_id, a.full_name AS accessor_name"
        " FROM audit_events e"
        " LEFT JOIN patients p ON p.id = e.actor_patient_id"
        " LEFT JOIN grants g ON g.id = e.ref_id AND g.subject_id = e.subject_patient_id"
        " AND e.action LIKE 'grant.%'"
        " LEFT JOIN patients a ON a.id = g.accessor_id"
        " WHERE e.subject_patient_id = ? ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?",
        (subject_patient_id, limit, offset),
    )
    entries = []
    for row in rows:
        data = dict(row)
        actor = data.pop("actor_name")
        accessor_id, accessor = data.pop("accessor_id"), data.pop("accessor_name")
        event = AuditEvent.model_validate(data)
        entries.append(
            LogEntry(event=event, actor_name=actor, accessor_id=accessor_id, accessor_name=accessor)
        )
    return entries
