"""Practitioner invites and signing in with them: the rules, without Telegram types."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from bot.tokens import hash_token, is_start_payload, new_token
from storage import Database, audit, grants, invites, logins, patients
from storage.db import Writes, now
from storage.models import Invite, Login, Patient

DOB_TRIES = 3
DAY = 86400


class InviteState(enum.StrEnum):
    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    LOCKED = "locked"
    SIGNED_IN_ALREADY = "signed_in_already"  # this Telegram user already holds this portal
    HAS_OTHER_PORTAL = "has_other_portal"  # this Telegram user holds a different portal
    PORTAL_TAKEN = "portal_taken"  # the portal is held by another Telegram user


@dataclass(frozen=True)
class InviteCheck:
    state: InviteState
    invite: Invite | None = None
    patient: Patient | None = None


@dataclass(frozen=True)
class NewInvite:
    token: str
    invite: Invite
    patient: Patient
    reused_patient: bool


@dataclass(frozen=True)
class InviteRequest:
    full_name: str
    date_of_birth: dt.date | None
    email: str | None


async def _create(
    conn: Writes, request: InviteRequest, ttl_days: int, invited_by: int | None
) -> NewInvite:
    patient, created = await patients.get_or_create_by_email(
        conn,
        request.full_name,
        request.date_of_birth,
        request.email,
    )
    if created and request.email:
        await grants.attach_email_requests(conn, patient.id, request.email)
    token, token_hash = new_token()
    invite = await invites.create(
        conn,
        token_hash,
        patient.id,
        expires_at=now() + ttl_days * DAY,
        invited_by=invited_by,
    )
    await audit.record(
        conn,
        "invite.created",
        actor_telegram_id=invited_by,
        subject_patient_id=patient.id,
        ref_id=invite.id,
    )
    return NewInvite(token, invite, patient, reused_patient=not created)


async def create_invite(
    db: Database, request: InviteRequest, ttl_days: int, invited_by: int | None = None
) -> NewInvite:
    async with db.transaction() as conn:
        return await _create(conn, request, ttl_days, invited_by)


async def create_invites(
    db: Database, requests: list[InviteRequest], ttl_days: int, invited_by: int | None = None
) -> list[NewInvite]:
    """A whole list in one transaction: all of them or none."""
    async with db.transaction() as conn:
        return [await _create(conn, r, ttl_days, invited_by) for r in requests]


async def check_invite(db: Database, payload: str, telegram_user_id: int) -> InviteCheck:
    """What opening this link would do for this Telegram user; changes nothing."""
    if not is_start_payload(payload):
        return InviteCheck(InviteState.MALFORMED)
    async with db.read() as conn:
        invite = await invites.by_token_hash(conn, hash_token(payload))
        if invite is None:
            return InviteCheck(InviteState.UNKNOWN)
        patient = await patients.get(conn, invite.patient_id)
        mine = await logins.get(conn, telegram_user_id)
        holder = await logins.for_patient(conn, invite.patient_id)
    return InviteCheck(_state(invite, mine, holder, telegram_user_id), invite, patient)


def _state(
    invite: Invite, mine: Login | None, holder: Login | None, telegram_user_id: int
) -> InviteState:
    if mine is not None and mine.patient_id == invite.patient_id:
        return InviteState.SIGNED_IN_ALREADY
    if invite.used_at is not None:
        return InviteState.USED
    if invite.locked_at is not None:
        return InviteState.LOCKED
    if invite.expires_at <= now():
        return InviteState.EXPIRED
    if mine is not None:
        return InviteState.HAS_OTHER_PORTAL
    if holder is not None and holder.telegram_user_id != telegram_user_id:
        return InviteState.PORTAL_TAKEN
    return InviteState.VALID


@dataclass(frozen=True)
class DobCheck:
    matches: bool
    tries_left: int
    locked: bool
    invited_by: int | None


async def check_date_of_birth(
    db: Database, invite_id: int, answer: dt.date, telegram_user_id: int
) -> DobCheck:
    """Compare with the patient's date of birth; a wrong answer counts, the third locks."""
    async with db.transaction() as conn:
        invite = await invites.get(conn, invite_id)
        patient = await patients.get(conn, invite.patient_id) if invite else None
        if invite is None or patient is None or invite.locked_at is not None:
            return DobCheck(False, 0, True, invite.invited_by if invite else None)
        if patient.date_of_birth == answer:
            return DobCheck(True, DOB_TRIES - invite.failed_dob_tries, False, invite.invited_by)
        invite = await invites.count_failed_try(conn, invite_id, DOB_TRIES)
        locked = invite.locked_at is not None
        await audit.record(
            conn,
            "invite.locked" if locked else "signin.dob_mismatch",
            outcome="refused",
            actor_telegram_id=telegram_user_id,
            subject_patient_id=patient.id,
            ref_id=invite_id,
        )
        return DobCheck(
            False, max(0, DOB_TRIES - invite.failed_dob_tries), locked, invite.invited_by
        )


@dataclass(frozen=True)
class SignIn:
    state: InviteState
    patient: Patient | None = None


async def sign_in(
    db: Database, invite_id: int, telegram_user_id: int, language: str | None
) -> SignIn:
    """Consume the invite and connect this Telegram user to the patient: exactly once."""
    async with db.transaction() as conn:
        invite = await invites.get(conn, invite_id)
        if invite is None:
            return SignIn(InviteState.UNKNOWN)
        mine = await logins.get(conn, telegram_user_id)
        holder = await logins.for_patient(conn, invite.patient_id)
        state = _state(invite, mine, holder, telegram_user_id)
        patient = await patients.get(conn, invite.patient_id)
        if state is not InviteState.VALID or not await invites.mark_used(
            conn, invite_id, telegram_user_id
        ):
            return SignIn(state if state is not InviteState.VALID else InviteState.USED, patient)
        await logins.create(conn, telegram_user_id, invite.patient_id, language)
        await audit.record(
            conn,
            "signin.ok",
            actor_patient_id=invite.patient_id,
            actor_telegram_id=telegram_user_id,
            subject_patient_id=invite.patient_id,
            ref_id=invite_id,
        )
        return SignIn(InviteState.VALID, patient)


async def create_own_login_invite(
    db: Database, holder_id: int, dependent_id: int, ttl_days: int
) -> NewInvite | None:
    """A single-use link that gives a held dependent their own login. From the moment they
    sign in with it, they decide who accesses them; existing grants stay as they are.
    None, audited, for anyone else (or an id that names nobody)."""
    async with db.transaction() as conn:
        dependent = await patients.get(conn, dependent_id)
        if (
            dependent is None
            or dependent.holder_id != holder_id
            or await logins.for_patient(conn, dependent_id) is not None
        ):
            await audit.record(
                conn,
                "invite.own_login",
                outcome="refused",
                actor_patient_id=holder_id,
                subject_patient_id=dependent.id if dependent else None,
            )
            return None
        token, token_hash = new_token()
        invite = await invites.create(
            conn,
            token_hash,
            dependent_id,
            expires_at=now() + ttl_days * DAY,
            created_by_patient=holder_id,
        )
        await audit.record(
            conn,
            "invite.own_login",
            actor_patient_id=holder_id,
            subject_patient_id=dependent_id,
            ref_id=invite.id,
        )
        return NewInvite(token, invite, dependent, reused_patient=True)
