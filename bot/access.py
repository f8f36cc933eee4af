"""Who may see and do what, for whom. The one place that answers allow or deny.

Everything here reads the database at the moment of the request: nothing is cached, so a
revoked or changed grant takes effect on the very next view or tap. No Telegram types.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from bot import policy, records
from bot.events import (
    AccessChanged,
    AccessRequested,
    AppointmentChangedInBot,
    DecisionsWaiting,
    DependentOffered,
    GrantLeft,
    GrantRevoked,
    RequestDecided,
    RequestWithdrawn,
)
from bot.notifier import notify
from storage import (
    Database,
    appointment_changes,
    audit,
    completed,
    grants,
    logins,
    patients,
    portal,
    reminders,
)
from storage import policy as policy_store
from storage.db import Reads, Writes, now
from storage.models import (
    AccessEntry,
    Appointment,
    ClinicalRecord,
    Grant,
    Invoice,
    LogEntry,
    Login,
    LoginView,
    Patient,
)
from storage.vocabulary import (
    Action,
    AppointmentAct,
    AppointmentStatus,
    Attempt,
    EndReason,
    GrantKind,
    GrantStatus,
    Level,
    Relationship,
    Role,
)

DAY = 86400


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
    conn: Reads, actor_id: int, subject_id: int, area: Area, act: Act
) -> Permission:
    """May `actor_id` do `act` on `area` of `subject_id`'s portal, right now?"""
    if actor_id == subject_id:
        return Permission(True)
    grant = await grants.active(conn, actor_id, subject_id)
    subject = await patients.get(conn, subject_id) if grant is not None else None
    return judge(in_force(grant, subject), area, act)  # the policy, at this moment (#20)


def judge(grant: Grant | None, area: Area, act: Act) -> Permission:
    """What an active grant (None: no grant at all) allows; the actor is not the subject."""
    if grant is None:
        return Permission(False)
    allowed = level_allows(grant.level, area) and role_allows(grant.role, act)
    return Permission(allowed, grant)


# --- The practice's policy, at the moment of each request (issue #20) -------------------
# bot/policy.py says what a grant allows right now (the age rules, end dates); every path
# that judges a grant goes through in_force(), so nobody keeps access a minute past a
# birthday or an end date, whatever the sweep (bot/sweep.py) has done so far.


def in_force(grant: Grant | None, subject: Patient | None) -> Grant | None:
    """The active grant as the policy lets it stand now: None when it allows nothing (or
    its subject is unknown), its level lowered where a rule limits it."""
    if grant is None or subject is None:
        return None
    return policy.applied(grant, subject, policy.current(), now())


def _still_holds(subject: Patient) -> bool:
    """Whoever created a child's account decides for them only until their adult age."""
    return policy.holds(subject, policy.current(), now())


async def _held_by(conn: Reads, holder_id: int) -> list[Patient]:
    return [p for p in await patients.held_by(conn, holder_id) if _still_holds(p)]


async def _access_begins(conn: Writes, grant_id: int) -> None:
    """Access that has just been approved: when it began, and between adults its end date."""
    grant = await grants.get(conn, grant_id)
    subject = await patients.get(conn, grant.subject_id) if grant and grant.subject_id else None
    if grant is None or subject is None:
        return
    at = now()
    ends = policy.end_date_at_approval(grant, subject, policy.current(), at)
    await policy_store.begin(conn, grant_id, at, ends)


# --- (end of the policy's part) ----------------------------------------------------------


async def decider_for(conn: Reads, subject_id: int) -> int | None:
    """Who decides on access to this patient: the patient once they have a login; before
    that, for a dependent, the patient who created them (the holder); otherwise nobody yet."""
    if await logins.for_patient(conn, subject_id) is not None:
        return subject_id
    subject = await patients.get(conn, subject_id)
    return subject.holder_id if subject and _still_holds(subject) else None  # policy (#20)


async def _decider_of(conn: Reads, grant: Grant) -> int | None:
    """A request is decided for the subject; an offer (a holder sharing a dependent) is
    accepted or declined by the patient it is offered to."""
    if grant.subject_id is None:
        return None
    if grant.kind is GrantKind.OFFER:
        # The offer carries the holder's consent, which counts only while the holder decides
        # for the dependent. Once the dependent has a login of their own they decide, and an
        # offer still open lapses: accepting it would let in someone they never approved.
        if await logins.for_patient(conn, grant.subject_id) is not None:
            return None
        # Nor once the holder no longer decides for them (their adult age, issue #20).
        subject = await patients.get(conn, grant.subject_id)
        return grant.accessor_id if subject and _still_holds(subject) else None
    return await decider_for(conn, grant.subject_id)


async def may_decide(conn: Reads, actor_id: int, subject_id: int) -> bool:
    return await decider_for(conn, subject_id) == actor_id


async def decides_for(conn: Reads, actor_id: int) -> list[int]:
    """The patients whose access requests this patient answers: themself and held dependents."""
    return [actor_id, *(p.id for p in await _held_by(conn, actor_id))]


# --- Who is told on the bot's own schedule (reminders, new items: bot/reminders.py) ------


def may_be_told_as(level: Level | None, area: Area) -> bool:
    """Whether the patient themself (None) or a holder of an active grant of this level is
    told what is coming or new in `area` of a portal: only what they may see there."""
    return level is None or level_allows(level, area)


async def may_be_told(conn: Reads, recipient_id: int, subject_id: int, area: Area) -> bool:
    """The same, asked again when the message goes: access revoked since, nothing is sent.
    Nothing is said about a patient who has died, nor to one."""
    if await reminders.is_deceased(conn, subject_id) or await reminders.is_deceased(
        conn, recipient_id
    ):
        return False
    return (await permission(conn, recipient_id, subject_id, area, Act.VIEW)).allowed


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
        # Stripped as it is stored: otherwise " a@b" misses the pending "a@b" and the
        # insert below fails on the one-pending-request-per-email index.
        if await grants.open_between(conn, requester_id, subject_id, email.strip()) is not None:
            return RequestResult(RequestOutcome.DUPLICATE)
        expires_at = now() + ttl_days * DAY
        grant = await _ask(conn, requester_id, subject_id, email.strip(), request, expires_at)
        decider = await decider_for(conn, subject_id) if subject_id else None
        await notify(conn, AccessRequested(grant, decider))
        return RequestResult(RequestOutcome.SENT, grant, subject, decider)


async def _ask(
    conn: Writes,
    requester_id: int,
    subject_id: int | None,
    email: str | None,
    request: AccessRequest,
    expires_at: int | None,
) -> Grant:
    """A pending request, and its line in the access log."""
    grant = await grants.create(
        conn,
        accessor_id=requester_id,
        subject_id=subject_id,
        subject_email=email,
        subject_name=request.subject_name,
        relationship=request.relationship,
        relationship_other=request.relationship_other,
        level=request.level,
        role=request.role,
        expires_at=expires_at,
    )
    await audit.record(
        conn,
        Action.GRANT_REQUESTED,
        actor_patient_id=requester_id,
        subject_patient_id=subject_id,
        ref_id=grant.id,
        detail=f"{request.level}/{request.role}",
    )
    return grant


async def create_dependent(
    db: Database,
    creator_id: int,
    full_name: str,
    date_of_birth: dt.date,
    request: AccessRequest,
    idempotency_key: str | None = None,
) -> tuple[Patient, Grant]:
    """A new patient account held by the creator, and — decided by the creator acting as the
    new patient's holder — the creator's access to it. One transaction, three audit events.

    With an idempotency key, confirming the same draft twice (a retry after a crash) returns
    the account the first confirmation created."""
    async with db.transaction() as conn:
        earlier = await _created_before(conn, idempotency_key)
        if earlier is not None:
            return earlier
        dependent = await _new_dependent(conn, creator_id, full_name, date_of_birth)
        named = replace(request, subject_name=full_name)
        grant = await _ask(conn, creator_id, dependent.id, None, named, expires_at=None)
        grant = await _approve_as_holder(conn, grant, creator_id)
        if idempotency_key:
            await completed.record(conn, idempotency_key, dependent.id, grant.id)
        return dependent, grant


async def _created_before(conn: Reads, idempotency_key: str | None) -> tuple[Patient, Grant] | None:
    """What an earlier confirmation with this key created, if one did."""
    done = await completed.get(conn, idempotency_key) if idempotency_key else None
    if done is None:
        return None
    earlier = await patients.get(conn, done[0])
    earlier_grant = await grants.get(conn, done[1]) if done[1] else None
    assert earlier is not None and earlier_grant is not None
    return earlier, earlier_grant


async def _new_dependent(
    conn: Writes, creator_id: int, full_name: str, date_of_birth: dt.date
) -> Patient:
    dependent = await patients.create(conn, full_name, date_of_birth, holder_id=creator_id)
    await audit.record(
        conn,
        Action.DEPENDENT_CREATED,
        actor_patient_id=creator_id,
        subject_patient_id=dependent.id,
    )
    return dependent


async def _approve_as_holder(conn: Writes, grant: Grant, holder_id: int) -> Grant:
    """The holder approves, as asked, their own request for the dependent they created."""
    decided = await grants.decide(
        conn,
        grant.id,
        status=GrantStatus.ACTIVE,
        decided_by=holder_id,
        level=grant.level,
        role=grant.role,
    )
    assert decided
    await _access_begins(conn, grant.id)  # policy (#20)
    await audit.record(
        conn,
        Action.GRANT_APPROVED,
        actor_patient_id=holder_id,
        subject_patient_id=grant.subject_id,
        ref_id=grant.id,
        detail="as_holder",
    )
    final = await grants.get(conn, grant.id)
    assert final is not None
    return final


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
    shown_on: tuple[int, int] | None = None,
) -> DecisionResult:
    """Approve (optionally lowering level/role) or deny a pending request, exactly once.
    `shown_on` is the (chat, message) the decider tapped, which shows the outcome already:
    every other card that asked is edited by the outbox."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.subject_id is None:
            await _refused(conn, decider_id, None, grant_id, Attempt.UNKNOWN)
            return DecisionResult(DecisionOutcome.NOT_YOURS)
        undecidable = await _undecidable(conn, grant, decider_id)
        if undecidable is not None:
            return undecidable
        new_level, new_role = level or grant.level, role or grant.role
        if not not_more_than(new_level, new_role, grant.level, grant.role):
            return DecisionResult(DecisionOutcome.INVALID, grant)
        status = GrantStatus.ACTIVE if approve else GrantStatus.DENIED
        if not await grants.decide(
            conn, grant_id, status=status, decided_by=decider_id, level=new_level, role=new_role
        ):
            return DecisionResult(DecisionOutcome.ALREADY, await grants.get(conn, grant_id))
        if approve:
            await _access_begins(conn, grant_id)  # policy (#20)
        await _audit_decision(conn, grant, decider_id, approve, new_level, new_role)
        offered_by = await _offered_by(conn, grant)
        await notify(conn, RequestDecided(grant, approve, offered_by, shown_on))
        return DecisionResult(DecisionOutcome.DECIDED, await grants.get(conn, grant_id))


async def _undecidable(conn: Writes, grant: Grant, decider_id: int) -> DecisionResult | None:
    """Why this patient cannot decide this request now (a refusal is audited); None: they can."""
    if await _decider_of(conn, grant) != decider_id:
        await _refused(conn, decider_id, grant.subject_id, grant.id, Attempt.NOT_DECIDER)
        return DecisionResult(DecisionOutcome.NOT_YOURS)
    if grant.status is not GrantStatus.PENDING:
        return DecisionResult(DecisionOutcome.ALREADY, grant)
    if grant.expires_at is not None and grant.expires_at <= now():
        await grants.expire_stale(conn)
        return DecisionResult(DecisionOutcome.EXPIRED, await grants.get(conn, grant.id))
    return None


async def _audit_decision(
    conn: Writes, grant: Grant, decider_id: int, approve: bool, level: Level, role: Role
) -> None:
    changed = (level, role) != (grant.level, grant.role)
    await audit.record(
        conn,
        Action.GRANT_APPROVED if approve else Action.GRANT_DENIED,
        actor_patient_id=decider_id,
        subject_patient_id=grant.subject_id,
        ref_id=grant.id,
        detail=f"{level}/{role}" + (" changed" if approve and changed else ""),
    )


async def _offered_by(conn: Reads, grant: Grant) -> int | None:
    """For an offer, the holder who made it (while they still hold the dependent)."""
    if grant.kind is not GrantKind.OFFER or grant.subject_id is None:
        return None
    subject = await patients.get(conn, grant.subject_id)
    return subject.holder_id if subject else None


async def record_refusal(db: Database, actor_id: int, grant_id: int) -> None:
    """A tap on a request this patient may not decide: audited, nothing else changes."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        await _refused(
            conn, actor_id, grant.subject_id if grant else None, grant_id, Attempt.NOT_DECIDER
        )


async def _refused(
    conn: Writes, actor_id: int, subject_id: int | None, ref: int, why: Attempt
) -> None:
    await audit.record(
        conn,
        Action.GRANT_DECIDE,
        outcome="refused",
        actor_patient_id=actor_id,
        subject_patient_id=await _known(conn, subject_id),
        ref_id=ref,
        detail=why,
    )


async def _known(conn: Reads, patient_id: int | None) -> int | None:
    """`patient_id` if that patient exists, else None. Callback data can name any number,
    and an audit event's subject must be a patient or NULL (a foreign key): a refusal of
    a forged id is recorded against the actor alone."""
    if patient_id is None or await patients.get(conn, patient_id) is None:
        return None
    return patient_id


# --- What the approval messages show ---------------------------------------------------


@dataclass(frozen=True)
class RequestInfo:
    grant: Grant
    requester: Patient  # the accessor: who asked, or to whom a dependent is offered
    subject: Patient
    decider_id: int | None
    offerer: Patient | None = None  # for offers: the holder who shares the dependent


async def request_info(db: Database, grant_id: int) -> RequestInfo | None:
    async with db.read() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.subject_id is None:
            return None
        requester = await patients.get(conn, grant.accessor_id)
        subject = await patients.get(conn, grant.subject_id)
        decider = await _decider_of(conn, grant)
        offerer = (
            await patients.get(conn, subject.holder_id)
            if grant.kind is GrantKind.OFFER and subject and subject.holder_id
            else None
        )
    if requester is None or subject is None:
        return None
    return RequestInfo(grant, requester, subject, decider, offerer)


async def queue_waiting_cards(db: Database, decider_id: int, chat_id: int) -> None:
    """Cards for the requests this patient decides (for themself or a held dependent), for
    the chat they just signed in from, unless one is on its way (queued, or held for their
    sign-in) or already there. A card sent to a chat they have left (a lost phone, signed
    out) does not count: they decide here now."""
    async with db.transaction() as conn:
        await grants.expire_stale(conn)
        subject_ids = await decides_for(conn, decider_id)
        entries = await grants.pending_for_subjects(conn, subject_ids)
        offers = await grants.offers_for(conn, decider_id)
        waiting = tuple(entry.grant.id for entry in (*entries, *offers))
        await notify(conn, DecisionsWaiting(decider_id, chat_id, waiting))


async def waiting_for(db: Database, decider_id: int, *, only_undelivered: bool) -> list[int]:
    """Pending requests this patient decides (for themself or a held dependent)."""
    async with db.transaction() as conn:
        await grants.expire_stale(conn)
        subject_ids = await decides_for(conn, decider_id)
        entries = await grants.pending_for_subjects(
            conn, subject_ids, only_undelivered=only_undelivered
        )
        offers = [
            e
            for e in await grants.offers_for(conn, decider_id)
            if not only_undelivered or e.grant.notified_at is None
        ]
    return [e.grant.id for e in (*entries, *offers)]


async def accessible(db: Database, accessor_id: int) -> list[AccessEntry]:
    """The patients this one accesses, leaving out access the policy has ended already
    (#20): lists do not wait for the sweep. Each grant as stored (its level as granted)."""
    async with db.read() as conn:
        entries = await grants.accessible_by(conn, accessor_id)
        found = {e.grant.id for e, _subject in await _standing(conn, entries)}
    return [entry for entry in entries if entry.grant.id in found]


async def _standing(conn: Reads, entries: list[AccessEntry]) -> list[tuple[AccessEntry, Patient]]:
    """Each entry the policy still allows, its grant as it stands now, with its subject."""
    kept = []
    for entry in entries:
        sid = entry.grant.subject_id
        subject = await patients.get(conn, sid) if sid is not None else None
        grant = in_force(entry.grant, subject)
        if grant is not None and subject is not None:
            kept.append((entry.model_copy(update={"grant": grant}), subject))
    return kept


async def telegram_id_of(db: Database, patient_id: int) -> int | None:
    async with db.read() as conn:
        login = await logins.for_patient(conn, patient_id)
    return login.telegram_user_id if login else None


# --- Whose portal is shown (/switch) ----------------------------------------------------


@dataclass(frozen=True)
class Viewing:
    """The portal a login is looking at now. `grant` is None for their own portal;
    `lost` says why the previous choice no longer applies ('revoked', 'expired', ...)."""

    me: Patient
    subject: Patient
    grant: Grant | None
    lost: GrantStatus | None = None
    lost_subject: Patient | None = None

    @property
    def own(self) -> bool:
        return self.grant is None


# A login and its patient as this update has read them already (bot/context.py Caller):
# a view of one's own portal, named by its id, needs nothing more, so it costs no second
# read of the same rows (view_of; not viewing, which follows whose portal is shown now).
SignedIn: TypeAlias = tuple[Login, Patient]


async def viewing(db: Database, telegram_user_id: int) -> Viewing | None:
    """Re-checked on every view: a grant revoked a second ago sends the user home. Always
    read afresh, never from the login the update read at its start: a handler may have
    switched whose portal is shown since (a notice's button does, then shows the view)."""
    async with db.read() as conn:
        found = await logins.with_subject(conn, telegram_user_id, None)
    if found is None:
        return None
    me, subject = found.me, found.subject
    if subject is not None and subject.id == me.id:
        return Viewing(me, me, None)
    grant = in_force(found.grant, subject)  # policy (#20)
    if subject is not None and grant is not None:
        return Viewing(me, subject, grant)
    current = found.login.current_subject_id
    assert current is not None  # else the subject would be the login's own patient
    async with db.transaction() as conn:
        # Only if the choice is still the one that failed: another worker may have just
        # switched this login elsewhere.
        await logins.forget_subject(conn, telegram_user_id, current)
        last = await grants.latest_between(conn, me.id, current)
        if found.grant is not None:  # still active, but the policy ended it (#20)
            last = found.grant.model_copy(update={"status": GrantStatus.EXPIRED})
        await audit.record(
            conn,
            Action.SWITCH_FALLBACK,
            outcome="refused",
            actor_patient_id=me.id,
            actor_telegram_id=telegram_user_id,
            subject_patient_id=current,
            ref_id=last.id if last else None,
            detail=last.status if last else None,
        )
    return Viewing(
        me, me, None, lost=last.status if last else GrantStatus.REVOKED, lost_subject=subject
    )


async def switch_to(db: Database, telegram_user_id: int, subject_id: int) -> Viewing | None:
    """Show `subject_id`'s portal from now on, if this login may; None when refused."""
    async with db.transaction() as conn:
        found = await logins.with_subject(conn, telegram_user_id, subject_id)
        view = _allowed_view(found, subject_id) if found else None
        if found is None or view is None:
            await audit.record(
                conn,
                Action.SWITCH,
                outcome="refused",
                actor_patient_id=found.me.id if found else None,
                actor_telegram_id=telegram_user_id,
                subject_patient_id=await _known(conn, subject_id),
            )
            return None
        await logins.set_current_subject(conn, telegram_user_id, None if view.own else subject_id)
        return view


def _allowed_view(found: LoginView, subject_id: int) -> Viewing | None:
    """The login's own portal, or one it holds an active grant on; None otherwise."""
    if subject_id == found.me.id:
        return Viewing(found.me, found.me, None)
    grant = in_force(found.grant, found.subject)  # policy (#20)
    if grant is None or found.subject is None:
        return None
    return Viewing(found.me, found.subject, grant)


async def authorize(
    db: Database, viewing_now: Viewing, area: Area, act: Act, *, action: Action
) -> Permission:
    """Check one view or action and audit it. `viewing_now` must come from viewing(),
    view_of() or switch_to() in this same update: its grant was read from the database
    a moment ago, so it is judged as it stands rather than read a second time."""
    # The policy once more, at this very moment (#20): pure, no second read.
    in_force_now = in_force(viewing_now.grant, viewing_now.subject)
    result = Permission(True) if viewing_now.own else judge(in_force_now, area, act)
    if not viewing_now.own or not result.allowed:
        async with db.statement(change=False) as conn:  # a record of a look, not a change
            await audit.record(
                conn,
                action,
                outcome="ok" if result.allowed else "refused",
                actor_patient_id=viewing_now.me.id,
                subject_patient_id=viewing_now.subject.id,
                ref_id=result.grant.id if result.grant else None,
            )
    return result


# --- Managing access (/access) -----------------------------------------------------------


class ChangeOutcome(enum.StrEnum):
    DONE = "done"
    NOT_YOURS = "not_yours"
    ALREADY = "already"  # no longer in the state the button was made for


@dataclass(frozen=True)
class ChangeResult:
    outcome: ChangeOutcome
    grant: Grant | None = None


async def _changed(
    conn: Writes, actor_id: int, grant: Grant, action: Action, detail: str | None
) -> ChangeResult:
    await audit.record(
        conn,
        action,
        actor_patient_id=actor_id,
        subject_patient_id=grant.subject_id,
        ref_id=grant.id,
        detail=detail,
    )
    return ChangeResult(ChangeOutcome.DONE, await grants.get(conn, grant.id))


async def revoke(db: Database, actor_id: int, grant_id: int) -> ChangeResult:
    """The subject (or holder) ends someone's access; it stops at once."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if (
            grant is None
            or grant.subject_id is None
            or not await may_decide(conn, actor_id, grant.subject_id)
        ):
            await _refused(
                conn, actor_id, grant.subject_id if grant else None, grant_id, Attempt.REVOKE
            )
            return ChangeResult(ChangeOutcome.NOT_YOURS)
        if not await grants.end(
            conn, grant_id, from_status=GrantStatus.ACTIVE, by=actor_id, reason=EndReason.REVOKED
        ):
            return ChangeResult(ChangeOutcome.ALREADY, grant)
        await notify(conn, GrantRevoked(grant))
        return await _changed(conn, actor_id, grant, Action.GRANT_REVOKED, None)


async def leave(db: Database, actor_id: int, grant_id: int) -> ChangeResult:
    """The accessor stops accessing a patient."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.accessor_id != actor_id:
            await _refused(
                conn, actor_id, grant.subject_id if grant else None, grant_id, Attempt.LEAVE
            )
            return ChangeResult(ChangeOutcome.NOT_YOURS)
        if not await grants.end(
            conn, grant_id, from_status=GrantStatus.ACTIVE, by=actor_id, reason=EndReason.LEFT
        ):
            return ChangeResult(ChangeOutcome.ALREADY, grant)
        decider = await decider_for(conn, grant.subject_id) if grant.subject_id else None
        await notify(conn, GrantLeft(grant, decider))
        return await _changed(conn, actor_id, grant, Action.GRANT_LEFT, None)


async def withdraw(db: Database, actor_id: int, grant_id: int) -> ChangeResult:
    """The requester withdraws a request that is still pending."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.accessor_id != actor_id or grant.kind is not GrantKind.REQUEST:
            await _refused(
                conn, actor_id, grant.subject_id if grant else None, grant_id, Attempt.WITHDRAW
            )
            return ChangeResult(ChangeOutcome.NOT_YOURS)
        if not await grants.end(
            conn, grant_id, from_status=GrantStatus.PENDING, by=actor_id, reason=EndReason.WITHDRAWN
        ):
            return ChangeResult(ChangeOutcome.ALREADY, grant)
        await notify(conn, RequestWithdrawn(grant))
        return await _changed(conn, actor_id, grant, Action.GRANT_WITHDRAWN, None)


async def change_access(
    db: Database, actor_id: int, grant_id: int, level: Level | None, role: Role | None
) -> ChangeResult:
    """The subject (or holder) changes the level or role of someone's access."""
    async with db.transaction() as conn:
        grant = await grants.get(conn, grant_id)
        if (
            grant is None
            or grant.subject_id is None
            or not await may_decide(conn, actor_id, grant.subject_id)
        ):
            await _refused(
                conn, actor_id, grant.subject_id if grant else None, grant_id, Attempt.CHANGE
            )
            return ChangeResult(ChangeOutcome.NOT_YOURS)
        new_level, new_role = level or grant.level, role or grant.role
        if not await grants.change(conn, grant_id, level=new_level, role=new_role, by=actor_id):
            return ChangeResult(ChangeOutcome.ALREADY, grant)
        detail = f"{grant.level}/{grant.role}>{new_level}/{new_role}"
        await notify(conn, AccessChanged(grant, new_level, new_role))
        return await _changed(conn, actor_id, grant, Action.GRANT_CHANGED, detail)


# --- Acting on appointments --------------------------------------------------------------


class ActOutcome(enum.StrEnum):
    DONE = "done"
    REFUSED = "refused"  # no edit role, or not this subject's appointment
    ALREADY = "already"  # not in a state this action applies to (double tap, stale button)


# Each act: the statuses it applies to, the status it leaves, and what the log calls it.
_APPOINTMENT_ACTS = {
    AppointmentAct.CANCEL: (
        (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED),
        AppointmentStatus.CANCELLED,
        Action.APPOINTMENT_CANCELLED,
    ),
    AppointmentAct.CONFIRM: (
        (AppointmentStatus.BOOKED,),
        AppointmentStatus.CONFIRMED,
        Action.APPOINTMENT_CONFIRMED,
    ),
}


async def act_on_appointment(
    db: Database, actor_id: int, subject_id: int, appointment_id: int, act: AppointmentAct
) -> ActOutcome:
    """Cancel or confirm one upcoming appointment of `subject_id`, if the actor may edit there.

    The appointment must belong to that subject: an id from another patient's button is
    refused, and the audit says so."""
    from_statuses, to_status, event = _APPOINTMENT_ACTS[act]
    async with db.transaction() as conn:
        allowed = await permission(conn, actor_id, subject_id, Area.APPOINTMENTS, Act.EDIT)
        appointment = await portal.get_appointment(conn, appointment_id)
        mine = appointment is not None and appointment.patient_id == subject_id
        upcoming = appointment is not None and appointment.starts_at >= now()
        if not allowed.allowed or not mine:
            why = "no_edit_role" if not allowed.allowed else "not_this_patient"
            await _appointment_refused(conn, event, actor_id, subject_id, appointment_id, why)
            return ActOutcome.REFUSED
        if not upcoming or not await portal.set_appointment_status(
            conn, appointment_id, subject_id, from_statuses, to_status
        ):
            return ActOutcome.ALREADY
        await audit.record(
            conn,
            event,
            actor_patient_id=actor_id,
            subject_patient_id=subject_id,
            ref_id=appointment_id,
        )
        await _tell_the_practice(conn, appointment, to_status, actor_id)
        return ActOutcome.DONE


async def _appointment_refused(
    conn: Writes, event: Action, actor_id: int, subject_id: int, appointment_id: int, why: str
) -> None:
    await audit.record(
        conn,
        event,
        outcome="refused",
        actor_patient_id=actor_id,
        subject_patient_id=await _known(conn, subject_id),  # forged ids exist too
        ref_id=appointment_id,
        detail=why,
    )


async def _tell_the_practice(
    conn: Writes, appointment: Appointment | None, status: str, actor_id: int
) -> None:
    """A change made in the bot is the practice's to take: kept (across re-imports, and for
    `python -m bot export-changes`) and told to the practitioner it is with."""
    assert appointment is not None
    change = await appointment_changes.record(conn, appointment.id, status, actor_id)
    staff = await appointment_changes.practitioners_named(conn, appointment.practitioner)
    await notify(conn, AppointmentChangedInBot(change, tuple(staff)))


@dataclass(frozen=True)
class AppointmentInReach:
    """An appointment as a button on a reminder may show it, to this actor, right now."""

    appointment: Appointment
    subject: Patient
    own: bool  # the actor's own appointment
    can_edit: bool  # they may confirm or cancel it


async def appointment_in_reach(
    db: Database, actor_id: int, appointment_id: int, *, action: Action
) -> AppointmentInReach | None:
    """One appointment, for a button on a reminder (whose data can be forged): while the
    actor may see that patient's appointments; otherwise None, and the refusal is audited
    as `action`."""
    async with db.read() as conn:
        appointment = await portal.get_appointment(conn, appointment_id)
        subject = await patients.get(conn, appointment.patient_id) if appointment else None
        seen = subject is not None and await may_be_told(
            conn, actor_id, subject.id, Area.APPOINTMENTS
        )
        edit = await permission(
            conn, actor_id, subject.id if subject else 0, Area.APPOINTMENTS, Act.EDIT
        )
    if appointment is None or subject is None or not seen:
        async with db.transaction() as conn:
            await _appointment_refused(
                conn,
                action,
                actor_id,
                subject.id if subject else 0,
                appointment_id,
                "no_access" if subject else "unknown",
            )
        return None
    return AppointmentInReach(appointment, subject, subject.id == actor_id, edit.allowed)


async def view_of(
    db: Database,
    telegram_user_id: int,
    subject_id: int,
    *,
    action: Action,
    signed_in: SignedIn | None = None,
) -> Viewing | None:
    """A Viewing of `subject_id` for a button on an older message: allowed only while
    this login is that patient or holds an active grant on them. Changes nothing; a
    refusal (access ended, or a forged id) is audited as `action`."""
    if signed_in is not None and signed_in[0].telegram_user_id == telegram_user_id:
        me = signed_in[1]
        if subject_id == me.id:
            return Viewing(me, me, None)
    async with db.read() as conn:
        found = await logins.with_subject(conn, telegram_user_id, subject_id)
    view = _allowed_view(found, subject_id) if found else None
    if view is None:
        async with db.transaction() as conn:
            await audit.record(
                conn,
                action,
                outcome="refused",
                actor_patient_id=found.me.id if found else None,
                actor_telegram_id=telegram_user_id,
                subject_patient_id=await _known(conn, subject_id),
            )
    return view


# --- The /access overview, sharing a dependent, and the access log -----------------------


@dataclass(frozen=True)
class Overview:
    accessing: list[AccessEntry]  # patients I access
    accessors: dict[int, list[AccessEntry]]  # subject id (me or a held dependent) -> who accesses
    held: list[Patient]  # dependents I decide for
    incoming: list[AccessEntry]  # requests I decide (for me or a dependent); name = requester
    outgoing: list[AccessEntry]  # my requests waiting; name = the name I typed
    offers: list[AccessEntry]  # dependents offered to me; name = the dependent
    # The patient whose portal each grant above opens, by grant id (for what comes next).
    subjects: dict[int, Patient] = field(default_factory=dict)


async def overview(db: Database, me: int) -> Overview:
    """Access as the policy lets it stand right now (#20): the lists do not wait for the
    sweep to show access it has ended, nor a level it has lowered."""
    async with db.transaction() as conn:
        await grants.expire_stale(conn)
        held = await _held_by(conn, me)
        subjects = [me, *(p.id for p in held)]
        accessing = await _standing(conn, await grants.accessible_by(conn, me))
        accessors = {s: await _standing(conn, await grants.accessors_of(conn, s)) for s in subjects}
        standing = accessing + [pair for pairs in accessors.values() for pair in pairs]
        return Overview(
            accessing=[entry for entry, _subject in accessing],
            accessors={s: [entry for entry, _subject in pairs] for s, pairs in accessors.items()},
            held=held,
            incoming=await grants.pending_for_subjects(conn, subjects),
            outgoing=await grants.outgoing_pending(conn, me),
            offers=await grants.offers_for(conn, me),
            subjects={entry.grant.id: subject for entry, subject in standing},
        )


GrantParties = tuple[Grant, Patient, Patient]  # the grant, its accessor, its subject


async def grant_for_party(db: Database, actor_id: int, grant_id: int) -> GrantParties | None:
    """A grant with its accessor and subject, for one of its two sides: the accessor, or
    whoever decides for the subject. Anyone else (or an id that names no grant) is
    refused, and that is audited."""
    parties = await grant_parties(db, grant_id)
    async with db.read() as conn:
        party = parties is not None and actor_id in (
            parties[0].accessor_id,
            await decider_for(conn, parties[2].id),
        )
    if parties is None or not party:
        async with db.transaction() as conn:
            await _refused(
                conn, actor_id, parties[2].id if parties else None, grant_id, Attempt.VIEW
            )
        return None
    return parties


async def grant_parties(db: Database, grant_id: int) -> GrantParties | None:
    """A grant with its accessor and subject, for the words around a change."""
    async with db.read() as conn:
        grant = await grants.get(conn, grant_id)
        if grant is None or grant.subject_id is None:
            return None
        accessor = await patients.get(conn, grant.accessor_id)
        subject = await patients.get(conn, grant.subject_id)
    if accessor is None or subject is None:
        return None
    return grant, accessor, subject


async def offer_by_email(
    db: Database,
    holder_id: int,
    dependent_id: int,
    email: str,
    level: Level,
    role: Role,
    ttl_days: int,
) -> Grant | None:
    """The holder shares a dependent with the patient who has `email`; they accept or
    decline. The holder is told the same whatever the email, so None (nobody to ask, or
    they already have access) looks like success."""
    async with db.transaction() as conn:
        if not await may_decide(conn, holder_id, dependent_id):
            await _refused(conn, holder_id, dependent_id, dependent_id, Attempt.OFFER)
            return None
        other = await patients.by_email(conn, email)
        if other is None or other.id in (holder_id, dependent_id):
            return None
        if await grants.open_between(conn, other.id, dependent_id, None) is not None:
            return None
        expires_at = now() + ttl_days * DAY
        grant = await _offer(conn, holder_id, other.id, dependent_id, level, role, expires_at)
        await notify(conn, DependentOffered(grant))
        return grant


async def _offer(
    conn: Writes,
    holder_id: int,
    accessor_id: int,
    dependent_id: int,
    level: Level,
    role: Role,
    expires_at: int,
) -> Grant:
    """A pending offer, and its line in the access log. The relationship is the holder's
    own to the dependent (a child, when they have no access of their own)."""
    mine = await grants.active(conn, holder_id, dependent_id)
    grant = await grants.create(
        conn,
        accessor_id=accessor_id,
        subject_id=dependent_id,
        subject_email=None,
        subject_name=None,
        relationship=mine.relationship if mine else Relationship.CHILD,
        relationship_other=mine.relationship_other if mine else None,
        level=level,
        role=role,
        expires_at=expires_at,
        kind=GrantKind.OFFER,
    )
    await audit.record(
        conn,
        Action.GRANT_OFFERED,
        actor_patient_id=holder_id,
        subject_patient_id=dependent_id,
        ref_id=grant.id,
        detail=f"{level}/{role}",
    )
    return grant


async def held_dependent(db: Database, holder_id: int, dependent_id: int) -> Patient | None:
    """The dependent, if `holder_id` decides for them right now; otherwise None, and the
    refusal is audited."""
    async with db.read() as conn:
        if await may_decide(conn, holder_id, dependent_id) and holder_id != dependent_id:
            return await patients.get(conn, dependent_id)
    async with db.transaction() as conn:
        await _refused(conn, holder_id, dependent_id, dependent_id, Attempt.HOLD)
    return None


@dataclass(frozen=True)
class LogPage:
    subject: Patient
    events: list[LogEntry]
    number: int
    has_more: bool


LOG_PAGE_SIZE = 10


async def may_read_log(db: Database, reader_id: int, subject_id: int) -> bool:
    """Whether access_log would show this log; asks, records nothing (for choosing which
    log to show, not for a request to read one)."""
    async with db.read() as conn:
        return await may_decide(conn, reader_id, subject_id)


async def access_log(db: Database, reader_id: int, subject_id: int, number: int) -> LogPage | None:
    """The subject's access log, newest first. Only the subject, or the holder of a
    dependent, may read it; anyone else is refused (and that is logged too)."""
    async with db.transaction() as conn:
        subject = await patients.get(conn, subject_id)
        if subject is None or not await may_decide(conn, reader_id, subject_id):
            await _refused(conn, reader_id, subject_id, subject_id, Attempt.ACTIVITY)
            return None
        rows = await audit.page_for_subject(
            conn, subject_id, LOG_PAGE_SIZE + 1, number * LOG_PAGE_SIZE
        )
    return LogPage(subject, rows[:LOG_PAGE_SIZE], number, len(rows) > LOG_PAGE_SIZE)


# ---------------------------------------------------------------------------------------
# Guarded reads for the chat (handlers/)
# ---------------------------------------------------------------------------------------
# Each returns what the chat may show, or a Refusal saying why not (recorded in the audit
# where a refusal is worth recording). The handlers decide nothing: they show one or the
# other, so every allow or deny behind a button can be read here.


class Refusal(enum.StrEnum):
    NOT_YOURS = "not_yours"  # not theirs to open or act on (or no such thing)
    ENDED = "ended"  # it was theirs, but is no longer active
    NOT_SHARED = "not_shared"  # the access level or role leaves this out


@dataclass(frozen=True)
class ManagedGrant:
    """An active grant as one of its two sides sees it in /access."""

    grant: Grant
    accessor: Patient
    subject: Patient
    as_accessor: bool  # the reader is the accessor (else they decide for the subject)
    subject_has_login: bool = False  # the subject answers for their portal themself


async def grant_for_manager(db: Database, actor_id: int, grant_id: int) -> ManagedGrant | Refusal:
    """A grant's actions, for its accessor or whoever decides for its subject; anyone else
    (or an id that names no grant) is refused and audited. Only an active grant has any."""
    parties = await grant_for_party(db, actor_id, grant_id)
    if parties is None:
        return Refusal.NOT_YOURS
    grant, accessor, subject = parties
    if grant.status is not GrantStatus.ACTIVE:
        return Refusal.ENDED
    async with db.read() as conn:
        has_login = await logins.for_patient(conn, subject.id) is not None
    return ManagedGrant(grant, accessor, subject, grant.accessor_id == actor_id, has_login)


async def request_for_decider(db: Database, actor_id: int, grant_id: int) -> RequestInfo | Refusal:
    """A request (or offer) with its people, for the one who decides it; anyone else is
    refused and audited. decide() checks again when the decision is written."""
    info = await request_info(db, grant_id)
    if info is None or info.decider_id != actor_id:
        await record_refusal(db, actor_id, grant_id)
        return Refusal.NOT_YOURS
    return info


# What a look at each part of a portal is recorded as.
SEEN_AS = {
    Area.APPOINTMENTS: Action.VIEW_APPOINTMENTS,
    Area.INVOICES: Action.VIEW_INVOICES,
    Area.RECORDS: Action.VIEW_RECORDS,
    Area.DETAILS: Action.VIEW_DETAILS,
}


def shows(view: Viewing, area: Area) -> bool:
    """Whether this view's access includes `area`: which views to offer a button for.
    Reading one is checked again (read_*)."""
    return view.grant is None or level_allows(view.grant.level, area)


async def _may_see(db: Database, view: Viewing, area: Area, recorded: bool) -> bool:
    if recorded:
        return (await authorize(db, view, area, Act.VIEW, action=SEEN_AS[area])).allowed
    # The page an act of this update (recorded as that act) has just changed.
    return view.own or judge(view.grant, area, Act.VIEW).allowed


@dataclass(frozen=True)
class Appointments:
    page: records.Page[Appointment]
    editable: bool  # the viewer may cancel and confirm them (their own, or an Edit role)


async def read_appointments(
    db: Database, view: Viewing, *, past: bool, page: int, recorded: bool = True
) -> Appointments | Refusal:
    """A page of the viewed patient's appointments. `recorded=False` only to show again
    the page an act in this same update changed (the act is recorded already)."""
    if not await _may_see(db, view, Area.APPOINTMENTS, recorded):
        return Refusal.NOT_SHARED
    found = await records.appointments(db, view.subject.id, past=past, number=page)
    editable = view.own or judge(view.grant, Area.APPOINTMENTS, Act.EDIT).allowed
    return Appointments(found, editable)


async def read_invoices(
    db: Database, view: Viewing, *, page: int
) -> records.Page[Invoice] | Refusal:
    if not await _may_see(db, view, Area.INVOICES, recorded=True):
        return Refusal.NOT_SHARED
    return await records.invoices(db, view.subject.id, number=page)


async def read_records(
    db: Database, view: Viewing, *, page: int
) -> records.Page[ClinicalRecord] | Refusal:
    if not await _may_see(db, view, Area.RECORDS, recorded=True):
        return Refusal.NOT_SHARED
    return await records.clinical_records(db, view.subject.id, number=page)


async def read_details(db: Database, view: Viewing) -> Patient | Refusal:
    if not await _may_see(db, view, Area.DETAILS, recorded=True):
        return Refusal.NOT_SHARED
    return view.subject


async def appointment_to_cancel(
    db: Database, view: Viewing, appointment_id: int
) -> Appointment | Refusal:
    """One of the viewed patient's appointments, for the question before cancelling it:
    with an Edit role only (recorded as asked), and only that patient's own."""
    permitted = await authorize(
        db, view, Area.APPOINTMENTS, Act.EDIT, action=Action.APPOINTMENT_CANCEL_ASKED
    )
    appointment = await records.appointment(db, appointment_id)
    if not permitted.allowed or appointment is None or appointment.patient_id != view.subject.id:
        return Refusal.NOT_YOURS
    return appointment


@dataclass(frozen=True)
class LogToShow:
    page: LogPage
    instead_of: Patient | None  # the patient viewed, whose log this reader may not read


async def log_for_view(db: Database, view: Viewing) -> LogToShow:
    """The access log of the portal being viewed where the reader may read it (their own,
    or a dependent's they hold); otherwise their own, saying whose they could not."""
    if not view.own and await may_read_log(db, view.me.id, view.subject.id):
        page = await access_log(db, view.me.id, view.subject.id, 0)
        if page is not None:  # else they stopped holding the account a moment ago
            return LogToShow(page, None)
    own = await access_log(db, view.me.id, view.me.id, 0)
    assert own is not None  # one's own log is always one's own to read
    return LogToShow(own, None if view.own else view.subject)
