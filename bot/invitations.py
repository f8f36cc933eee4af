"""Practitioner invites and signing in with them: the rules, without Telegram types."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from bot import policy
from bot.tokens import hash_token, is_start_payload, new_token
from storage import Database, audit, grants, invites, logins, outbox, patients
from storage.audit import Action
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
    BURNED = "burned"  # posted in a group chat, where others saw it
    SIGNED_IN_ALREADY = "signed_in_already"  # this Telegram user already holds this portal
    HAS_OTHER_PORTAL = "has_other_portal"  # this Telegram user holds a different portal
    PORTAL_TAKEN = "portal_taken"  # the portal is held by another Telegram user
    NO_DATE_OF_BIRTH = "no_date_of_birth"  # nothing to check (an invite from before 0010)


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


class InviteRefusal(enum.StrEnum):
    NO_DATE_OF_BIRTH = "no_date_of_birth"  # none given and none on record
    DATE_OF_BIRTH_DIFFERS = "date_of_birth_differs"  # the patient on record has another


class InviteRefused(Exception):
    """No invite was made: its link could not check who opens it."""

    def __init__(
        self, reason: InviteRefusal, request: InviteRequest, patient_id: int | None = None
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.request = request
        self.patient_id = patient_id  # the patient on record, when there is one


def expected_date_of_birth(patient: Patient, invite: Invite) -> dt.date | None:
    """What opening this invite must be answered with: the patient's record first (the
    practice's system may have filled it in since), else the date given at invite time."""
    return patient.date_of_birth or invite.date_of_birth


async def _create(
    conn: Writes, request: InviteRequest, ttl_days: int, invited_by: int | None
) -> NewInvite:
    patient, created = await patients.get_or_create_by_email(
        conn,
        request.full_name,
        request.date_of_birth,
        request.email,
    )
    on_record, given = patient.date_of_birth, request.date_of_birth
    if on_record is None and given is None:
        raise InviteRefused(InviteRefusal.NO_DATE_OF_BIRTH, request)
    if on_record is not None and given is not None and on_record != given:
        raise InviteRefused(InviteRefusal.DATE_OF_BIRTH_DIFFERS, request, patient.id)
    if created and request.email:
        await grants.attach_email_requests(conn, patient.id, request.email)
    token, token_hash = new_token()
    invite = await invites.create(
        conn,
        token_hash,
        patient.id,
        expires_at=now() + ttl_days * DAY,
        invited_by=invited_by,
        date_of_birth=given if on_record is None else None,
    )
    await audit.record(
        conn,
        Action.INVITE_CREATED,
        actor_telegram_id=invited_by,
        subject_patient_id=patient.id,
        ref_id=invite.id,
    )
    return NewInvite(token, invite, patient, reused_patient=not created)


async def create_invite(
    db: Database, request: InviteRequest, ttl_days: int, invited_by: int | None = None
) -> NewInvite:
    """Raises InviteRefused, creating nothing, when the link could not check a date of
    birth: none given for a patient with none on record, or one that differs from it."""
    (new,) = await create_invites(db, [request], ttl_days, invited_by)
    return new


async def create_invites(
    db: Database, requests: list[InviteRequest], ttl_days: int, invited_by: int | None = None
) -> list[NewInvite]:
    """A whole list in one transaction: all of them or none (see create_invite)."""
    try:
        async with db.transaction() as conn:
            return [await _create(conn, r, ttl_days, invited_by) for r in requests]
    except InviteRefused as refused:
        if refused.reason is InviteRefusal.DATE_OF_BIRTH_DIFFERS:
            # In the patient's access log: a wrong date given for them may be someone
            # trying to get a link to their portal.
            async with db.transaction() as conn:
                await audit.record(
                    conn,
                    Action.INVITE_CREATED,
                    outcome="refused",
                    actor_telegram_id=invited_by,
                    subject_patient_id=refused.patient_id,
                    detail="dob_differs",
                )
        raise


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
    state = _state(invite, mine, holder, telegram_user_id)
    if state is InviteState.VALID and (
        patient is None or expected_date_of_birth(patient, invite) is None
    ):
        state = InviteState.NO_DATE_OF_BIRTH
    return InviteCheck(state, invite, patient)


def _state(
    invite: Invite, mine: Login | None, holder: Login | None, telegram_user_id: int
) -> InviteState:
    if mine is not None and mine.patient_id == invite.patient_id:
        return InviteState.SIGNED_IN_ALREADY
    if invite.used_at is not None:
        return InviteState.USED
    if invite.locked_at is not None:
        return InviteState.LOCKED
    if invite.burned_at is not None:
        return InviteState.BURNED
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
    burned: bool = False  # burned while the user was typing their date of birth


async def check_date_of_birth(
    db: Database, invite_id: int, answer: dt.date, telegram_user_id: int
) -> DobCheck:
    """Compare with the patient's date of birth; a wrong answer counts, the third locks."""
    async with db.transaction() as conn:
        invite = await invites.get(conn, invite_id)
        patient = await patients.get(conn, invite.patient_id) if invite else None
        if invite is not None and invite.burned_at is not None:
            return DobCheck(False, 0, False, invite.invited_by, burned=True)
        if invite is None or patient is None or invite.locked_at is not None:
            return DobCheck(False, 0, True, invite.invited_by if invite else None)
        if expected_date_of_birth(patient, invite) == answer:
            return DobCheck(True, DOB_TRIES - invite.failed_dob_tries, False, invite.invited_by)
        invite = await invites.count_failed_try(conn, invite_id, DOB_TRIES)
        locked = invite.locked_at is not None
        await audit.record(
            conn,
            Action.INVITE_LOCKED if locked else Action.SIGNIN_DOB_MISMATCH,
            outcome="refused",
            actor_telegram_id=telegram_user_id,
            subject_patient_id=patient.id,
            ref_id=invite_id,
        )
        if locked and invite.invited_by is not None:
            await outbox.enqueue(
                conn,
                outbox.Kind.INVITE_LOCKED,
                ref_id=invite_id,
                chat_id=invite.invited_by,
                detail={"patient": patient.full_name},
            )
        return DobCheck(
            False, max(0, DOB_TRIES - invite.failed_dob_tries), locked, invite.invited_by
        )


@dataclass(frozen=True)
class SignIn:
    state: InviteState
    patient: Patient | None = None


async def sign_in(
    db: Database,
    invite_id: int,
    telegram_user_id: int,
    language: str | None,
    date_of_birth: dt.date,
) -> SignIn:
    """Consume the invite and connect this Telegram user to the patient: exactly once, and
    only with the date of birth it checks (check_date_of_birth counts the wrong ones)."""
    async with db.transaction() as conn:
        invite = await invites.get(conn, invite_id)
        if invite is None:
            return SignIn(InviteState.UNKNOWN)
        mine = await logins.get(conn, telegram_user_id)
        holder = await logins.for_patient(conn, invite.patient_id)
        state = _state(invite, mine, holder, telegram_user_id)
        patient = await patients.get(conn, invite.patient_id)
        if patient is None:
            return SignIn(InviteState.UNKNOWN)
        expected = expected_date_of_birth(patient, invite)
        if state is InviteState.VALID and expected is None:
            return SignIn(InviteState.NO_DATE_OF_BIRTH, patient)
        if state is InviteState.VALID and expected != date_of_birth:
            return SignIn(InviteState.UNKNOWN, patient)  # never asked, or asked and missed
        if state is not InviteState.VALID or not await invites.mark_used(
            conn, invite_id, telegram_user_id
        ):
            return SignIn(state if state is not InviteState.VALID else InviteState.USED, patient)
        if patient.date_of_birth is None:
            await patients.fill_date_of_birth(conn, patient.id, date_of_birth)
            patient = patient.model_copy(update={"date_of_birth": date_of_birth})
        await logins.create(conn, telegram_user_id, invite.patient_id, language)
        await audit.record(
            conn,
            Action.SIGNIN_OK,
            actor_patient_id=invite.patient_id,
            actor_telegram_id=telegram_user_id,
            subject_patient_id=invite.patient_id,
            ref_id=invite_id,
        )
        return SignIn(InviteState.VALID, patient)


@dataclass(frozen=True)
class Burned:
    invite: Invite
    patient: Patient


async def burn_exposed(
    db: Database, payload: str, telegram_user_id: int, chat_type: str
) -> Burned | None:
    """An invite link posted in a group chat has been seen by others: from now on nobody can
    sign in with it. The invite and its patient when this call burned it; None for any other
    text, or a link that was unusable anyway (used, locked, expired, burned before)."""
    if not is_start_payload(payload):
        return None
    async with db.transaction() as conn:
        invite = await invites.by_token_hash(conn, hash_token(payload))
        if invite is None or not await invites.burn(conn, invite.id):
            return None
        patient = await patients.get(conn, invite.patient_id)
        assert patient is not None  # invites.patient_id references patients
        await audit.record(
            conn,
            Action.INVITE_BURNED_IN_GROUP,
            actor_telegram_id=telegram_user_id,
            subject_patient_id=patient.id,
            ref_id=invite.id,
            detail=chat_type,
        )
        if invite.invited_by is not None:
            await outbox.enqueue(
                conn,
                outbox.Kind.INVITE_BURNED,
                ref_id=invite.id,
                chat_id=invite.invited_by,
                detail={"patient": patient.full_name},
            )
        return Burned(invite, patient)


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
            or dependent.date_of_birth is None  # the link would have nothing to check
            or dependent.holder_id != holder_id
            or not policy.holds(dependent, policy.current(), now())  # their adult age (#20)
            or await logins.for_patient(conn, dependent_id) is not None
        ):
            await audit.record(
                conn,
                Action.INVITE_OWN_LOGIN,
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
            Action.INVITE_OWN_LOGIN,
            actor_patient_id=holder_id,
            subject_patient_id=dependent_id,
            ref_id=invite.id,
        )
        return NewInvite(token, invite, dependent, reused_patient=True)


# --- Signing out ---------------------------------------------------------------------------


class SignOutBy(enum.StrEnum):
    """Who removed a login, as the access log records it."""

    PATIENT = Action.SIGNED_OUT.value  # the patient's own /signout
    PRACTICE = Action.UNLINKED.value  # a practitioner, in chat or with `python -m bot unlink`


@dataclass(frozen=True)
class SignedOut:
    patient: Patient
    login: Login  # as it was: whom to tell, and in which language


async def sign_out(
    db: Database, telegram_user_id: int, patient_id: int, since: int
) -> SignedOut | None:
    """The patient's own, confirmed /signout: only the login the confirmation was for (this
    Telegram user, this patient, the sign-in made at `since`) goes. None: nothing changed."""
    async with db.transaction() as conn:
        login = await logins.get(conn, telegram_user_id)
        if login is None or login.patient_id != patient_id or login.created_at != since:
            return None
        return await _remove(conn, login, SignOutBy.PATIENT, actor_patient_id=patient_id)


async def unlink(
    db: Database,
    patient_id: int,
    *,
    telegram_user_id: int | None = None,
    practitioner_id: int | None = None,
) -> SignedOut | None:
    """A practitioner signs the patient's Telegram account out (practitioner_id None: the
    CLI). With telegram_user_id, only while that account still holds the portal (a stale
    confirmation must not sign out a newer login). None: nobody was signed in."""
    async with db.transaction() as conn:
        login = await logins.for_patient(conn, patient_id)
        if login is None or telegram_user_id not in (None, login.telegram_user_id):
            return None
        return await _remove(conn, login, SignOutBy.PRACTICE, actor_telegram_id=practitioner_id)


async def _remove(
    conn: Writes,
    login: Login,
    by: SignOutBy,
    *,
    actor_patient_id: int | None = None,
    actor_telegram_id: int | None = None,
) -> SignedOut | None:
    """Only the login goes (with its /switch choice): records, grants and dependents stay.
    The portal opens again only with an invite made from now on."""
    patient = await patients.get(conn, login.patient_id)
    if patient is None or not await logins.delete(
        conn, login.telegram_user_id, login.patient_id, login.created_at
    ):
        return None
    await invites.expire_open_for_patient(conn, patient.id)
    # Whoever created their account does not decide for them again, nor revive an offer.
    await patients.release_from_holder(conn, patient.id)
    await grants.lapse_offers_for(conn, patient.id)
    await audit.record(
        conn,
        Action(by.value),
        actor_patient_id=actor_patient_id,
        actor_telegram_id=actor_telegram_id if by is SignOutBy.PRACTICE else login.telegram_user_id,
        subject_patient_id=patient.id,
    )
    if by is SignOutBy.PRACTICE:  # a patient who signed themself out knows already
        await outbox.enqueue(
            conn,
            outbox.Kind.SIGNED_OUT,
            ref_id=patient.id,
            chat_id=login.telegram_user_id,
            detail={"locale": login.locale},
        )
    return SignedOut(patient, login)


async def find_signed_in(
    db: Database, *, email: str | None = None, name: str | None = None
) -> list[tuple[Patient, Login]]:
    """Patients a practitioner may sign out: those with a login, by email or full name."""
    async with db.read() as conn:
        return await logins.signed_in_patients(conn, email=email, name=name, limit=5)
