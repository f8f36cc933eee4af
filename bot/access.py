"""Who may see and do what, for whom. The one place that answers allow or deny.

Everything here reads the database at the moment of the request: nothing is cached, so a
revoked or changed grant takes effect on the very next view or tap. No Telegram types.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import aiosqlite

from storage import Database, audit, grants, logins, patients
from storage.db import now
from storage.models import AccessEntry, Grant, Patient

DAY = 86400


class Relationship(enum.StrEnum):
    CHILD = "child"
    DAUGHTER = "daughter"
    SON = "son"
    PARENT = "parent"
    PARTNER = "partner"
    CARER = "carer"
    OTHER = "other"


class Level(enum.StrEnum):
    CLINICAL = "clinical"  # appointments, invoices and clinical records
    ADMINISTRATIVE = "administrative"  # appointments and invoices only


class Role(enum.StrEnum):
    VIEW = "view"
    EDIT = "edit"


class Area(enum.StrEnum):
    DETAILS = "details"
    APPOINTMENTS = "appointments"
    INVOICES = "invoices"
    RECORDS = "records"


class Act(enum.StrEnum):
    VIEW = "view"
    EDIT = "edit"


_LEVEL_AREAS = {
    Level.CLINICAL: frozenset(Area),
    Level.ADMINISTRATIVE: frozenset({Area.DETAILS, Area.APPOINTMENTS, Area.INVOICES}),
}
_LEVEL_RANK = {Level.ADMINISTRATIVE: 0, Level.CLINICAL: 1}
_ROLE_RANK = {Role.VIEW: 0, Role.EDIT: 1}


def level_allows(level: Level, area: Area) -> bool:
    return area in _LEVEL_AREAS[level]


def role_allows(role: Role, act: Act) -> bool:
    return act is Act.VIEW or role is Role.EDIT


def not_more_than(level: Level, role: Role, requested_level: Level, requested_role: Role) -> bool:
    """An approver may lower what was asked for, never raise it."""
    return (
        _LEVEL_RANK[level] <= _LEVEL_RANK[requested_level]
        and _ROLE_RANK[role] <= _ROLE_RANK[requested_role]
    )


@dataclass(frozen=True)
class Permission:
    allowed: bool
    grant: Grant | None = None  # None when the actor is the subject


async def permission(
    conn: aiosqlite.Connection, actor_id: int, subject_id: int, area: Area, act: Act
) -> Permission:
    """May `actor_id` do `act` on `area` of `subject_id`'s portal, right now?"""
    if actor_id == subject_id:
        return Permission(True)
    grant = await grants.active(conn, actor_id, subject_id)
    if grant is None:
        return Permission(False)
    allowed = level_allows(Level(grant.level), area) and role_allows(Role(grant.role), act)
    return Permission(allowed, grant)


async def decider_for(conn: aiosqlite.Connection, subject_id: int) -> int | None:
    """Who decides on access to this patient: the patient once they have a login; before
    that, for a dependent, the patient who created them (the holder); otherwise nobody yet."""
    if await logins.for_patient(conn, subject_id) is not None:
        return subject_id
    subject = await patients.get(conn, subject_id)
    return subject.holder_id if subject else None


async def may_decide(conn: aiosqlite.Connection, actor_id: int, subject_id: int) -> bool:
    return await decider_for(conn, subject_id) == actor_id


async def decides_for(conn: aiosqlite.Connection, actor_id: int) -> list[int]:
    """The patients whose access requests this patient answers: themself and held dependents."""
    return [actor_id, *(p.id for p in await patients.held_by(conn, actor_id))]


# --- Requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRequest:
    subject_name: str
    relationship: Relationship
    relationship_other: str | None
    level: Level
    role: Role


class RequestOutcome(enum.StrEnum):
    SENT = "sent"  # also for an email nobody has: the requester is never told which
    SELF = "self"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class RequestResult:
    outcome: RequestOutcome
    grant: Grant | None = None
    subject: Patient | None = None  # set only when a patient has the email
    decider_id: int | None = None  # whom to notify, if anyone can decide now


async def request_by_email(
    db: Database, requester_id: int, email: str, request: AccessRequest, ttl_days: int
) -> RequestResult:
    """Ask the owner of `email` for access. The result for an unknown email looks the same
    to the requester as for a known one; the request then waits for that email."""
    async with db.transaction() as conn:
        await grants.expire_stale(conn)
        subject = await patients.by_email(conn, email)
        if subject is not None and subject.id == requester_id:
            return RequestResult(RequestOutcome.SELF)
        subject_id = subject.id if subject else None
        if await grants.open_between(conn, requester_id, subject_id, email) is not None:
            return RequestResult(RequestOutcome.DUPLICATE)
        grant = await grants.create(
            conn,
            accessor_id=requester_id,
            subject_id=subject_id,
            subject_email=email.strip(),
            subject_name=request.subject_name,
            relationship=request.relationship,
            relationship_other=request.relationship_other,
            level=request.level,
            role=request.role,
            expires_at=now() + ttl_days * DAY,
        )
        await audit.record(
            conn,
            "grant.requested",
            actor_patient_id=requester_id,
            subject_patient_id=subject_id,
            ref_id=grant.id,
            detail=f"{request.level}/{request.role}",
        )
        decider = await decider_for(conn, subject_id) if subject_id else None
        return RequestResult(RequestOutcome.SENT, grant, subject, decider)


async def create_dependent(
    db: Database,
    creator_id: int,
    full_name: str,
    date_of_birth: dt.date,
    request: AccessRequest,
) -> tuple[Patient, Grant]:
    """A new patient account held by the creator, and — decided by the creator acting as the
    new patient's holder — the creator's access to it. One transaction, three audit events."""
    async with db.transaction() as conn:
        dependent = await patients.create(
            conn,
            full_name,
            date_of_birth,
            holder_id=creator_id,  # type: ignore[arg-type]
        )
        await audit.record(
            conn,
            "patient.dependent_created",
            actor_patient_id=creator_id,
            subject_patient_id=dependent.id,
        )
        grant = await grants.create(
            conn,
            accessor_id=creator_id,
            subject_id=dependent.id,
            subject_email=None,
            subject_name=full_name,
            relationship=request.relationship,
            relationship_other=request.relationship_other,
            level=request.level,
            role=request.role,
            expires_at=None,
        )
        await audit.record(
            conn,
            "grant.requested",
            actor_patient_id=creator_id,
            subject_patient_id=dependent.id,
            ref_id=grant.id,
            detail=f"{request.level}/{request.role}",
        )
        decided = await grants.decide(
            conn,
            grant.id,
            status="active",
            decided_by=creator_id,
            level=grant.level,
            role=grant.role,
        )
        assert decided
        await audit.record(
            conn,
            "grant.approved",
            actor_patient_id=creator_id,
            subject_patient_id=dependent.id,
            ref_id=grant.id,
            detail="as_holder",
        )
        final = await grants.get(conn, grant.id)
        assert final is not None
        return dependent, final


# --- Decisions ------------------------------------------------------------------------


class DecisionOutcome(enum.StrEnum):
    DECIDED = "decided"
    NOT_YOURS = "not_yours"  # the tapping patient may not decide this request
    ALREADY = "already"  # decided before (double tap, redelivery, another device)
    EXPIRED = "expired"
    INVALID = "invalid"  # asked to raise the level or role


@dataclass(frozen=True)
class DecisionResult:
    outcome: DecisionOutcome
    grant: Grant | None = None


async def decide(
    db: Database,
    grant_id: int,
    decider_id: int,
    approve: bool,
    level: Level | None = None,
    role: Role | None = None,
) -> DecisionResult:
    """Approve (optionally lowering level/role) or deny a pending request, exactly once."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.subject_id is None:
            await _refused(conn, decider_id, None, grant_id, "unknown")
            return DecisionResult(DecisionOutcome.NOT_YOURS)
        if not await may_decide(conn, decider_id, grant.subject_id):
            await _refused(conn, decider_id, grant.subject_id, grant_id, "not_decider")
            return DecisionResult(DecisionOutcome.NOT_YOURS)
        if grant.status != "pending":
            return DecisionResult(DecisionOutcome.ALREADY, grant)
        if grant.expires_at is not None and grant.expires_at <= now():
            await grants.expire_stale(conn)
            return DecisionResult(DecisionOutcome.EXPIRED, await grants.get(conn, grant_id))
        new_level = level or Level(grant.level)
        new_role = role or Role(grant.role)
        if not not_more_than(new_level, new_role, Level(grant.level), Role(grant.role)):
            return DecisionResult(DecisionOutcome.INVALID, grant)
        status = "active" if approve else "denied"
        if not await grants.decide(
            conn, grant_id, status=status, decided_by=decider_id, level=new_level, role=new_role
        ):
            return DecisionResult(DecisionOutcome.ALREADY, await grants.get(conn, grant_id))
        changed = (new_level, new_role) != (grant.level, grant.role)
        await audit.record(
            conn,
            "grant.approved" if approve else "grant.denied",
            actor_patient_id=decider_id,
            subject_patient_id=grant.subject_id,
            ref_id=grant_id,
            detail=f"{new_level}/{new_role}" + (" changed" if approve and changed else ""),
        )
        return DecisionResult(DecisionOutcome.DECIDED, await grants.get(conn, grant_id))


async def record_refusal(db: Database, actor_id: int, grant_id: int) -> None:
    """A tap on a request this patient may not decide: audited, nothing else changes."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        await _refused(conn, actor_id, grant.subject_id if grant else None, grant_id, "not_decider")


async def _refused(
    conn: aiosqlite.Connection, actor_id: int, subject_id: int | None, ref: int, why: str
) -> None:
    await audit.record(
        conn,
        "grant.decide",
        outcome="refused",
        actor_patient_id=actor_id,
        subject_patient_id=subject_id,
        ref_id=ref,
        detail=why,
    )


# --- What the approval messages show ---------------------------------------------------


@dataclass(frozen=True)
class RequestInfo:
    grant: Grant
    requester: Patient
    subject: Patient
    decider_id: int | None


async def request_info(db: Database, grant_id: int) -> RequestInfo | None:
    async with db.read() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.subject_id is None:
            return None
        requester = await patients.get(conn, grant.accessor_id)
        subject = await patients.get(conn, grant.subject_id)
        decider = await decider_for(conn, grant.subject_id)
    if requester is None or subject is None:
        return None
    return RequestInfo(grant, requester, subject, decider)


async def waiting_for(db: Database, decider_id: int, *, only_undelivered: bool) -> list[int]:
    """Pending requests this patient decides (for themself or a held dependent)."""
    async with db.transaction() as conn:
        await grants.expire_stale(conn)
        subject_ids = await decides_for(conn, decider_id)
        entries = await grants.pending_for_subjects(
            conn, subject_ids, only_undelivered=only_undelivered
        )
    return [e.grant.id for e in entries]


async def mark_delivered(db: Database, grant_id: int) -> None:
    async with db.transaction() as conn:
        await grants.mark_notified(conn, grant_id)


async def accessible(db: Database, accessor_id: int) -> list[AccessEntry]:
    async with db.read() as conn:
        return await grants.accessible_by(conn, accessor_id)


async def telegram_id_of(db: Database, patient_id: int) -> int | None:
    async with db.read() as conn:
        login = await logins.for_patient(conn, patient_id)
    return login.telegram_user_id if login else None
