"""The audit log: who did what, for whom, and whether it was allowed."""

from __future__ import annotations

import enum

from storage.db import Reads, Writes, fetch_all, now
from storage.models import AuditEvent, LogEntry


class Action(enum.StrEnum):
    """Every kind of event the log can hold. Each has its words in handlers/activity.py
    (tests/test_activity_words.py checks every one, in every language)."""

    # Access between patients (bot/access.py)
    GRANT_REQUESTED = "grant.requested"
    GRANT_APPROVED = "grant.approved"
    GRANT_DENIED = "grant.denied"
    GRANT_REVOKED = "grant.revoked"
    GRANT_LEFT = "grant.left"
    GRANT_WITHDRAWN = "grant.withdrawn"
    GRANT_CHANGED = "grant.changed"
    GRANT_OFFERED = "grant.offered"
    GRANT_DECIDE = "grant.decide"  # refused only; the detail is an Attempt
    DEPENDENT_CREATED = "patient.dependent_created"
    # Looking and acting in a portal
    VIEW_APPOINTMENTS = "view.appointments"
    VIEW_INVOICES = "view.invoices"
    VIEW_RECORDS = "view.records"
    VIEW_DETAILS = "view.details"
    APPOINTMENT_CANCELLED = "appointment.cancelled"
    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_CANCEL_ASKED = "appointment.cancel_asked"
    SWITCH = "switch"
    SWITCH_FALLBACK = "switch.fallback"
    # Invites and signing in (bot/invitations.py)
    INVITE_CREATED = "invite.created"
    INVITE_OWN_LOGIN = "invite.own_login"
    INVITE_LOCKED = "invite.locked"
    INVITE_BURNED_IN_GROUP = "invite.burned_in_group"
    SIGNIN_OK = "signin.ok"
    SIGNIN_DOB_MISMATCH = "signin.dob_mismatch"
    SIGNED_OUT = "signin.signed_out"
    UNLINKED = "signin.unlinked"
    # The practice's records (bot/fhir.py)
    PATIENT_IMPORTED = "patient.imported"
    FHIR_IMPORTED = "fhir.imported"


class Attempt(enum.StrEnum):
    """What a refused `grant.decide` event tried to do (its detail)."""

    UNKNOWN = "unknown"  # decide a request that does not exist
    NOT_DECIDER = "not_decider"  # decide someone else's request
    REVOKE = "revoke"
    CHANGE = "change"
    LEAVE = "leave"
    WITHDRAW = "withdraw"
    VIEW = "view"  # open one access's settings in /access
    OFFER = "offer"  # share a dependent they do not hold
    HOLD = "hold"  # manage a dependent they do not hold
    ACTIVITY = "activity"  # read an access log that is not theirs


# The refused attempts whose ref_id names a grant (the others name the patient).
ABOUT_A_GRANT = frozenset(
    {
        Attempt.NOT_DECIDER,
        Attempt.REVOKE,
        Attempt.CHANGE,
        Attempt.LEAVE,
        Attempt.WITHDRAW,
        Attempt.VIEW,
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
