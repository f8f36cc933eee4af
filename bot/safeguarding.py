"""What people do about the practice's policy (issue #20), for the chat and the CLI to call:
renew access, keep it past adulthood, approve Clinical or continued access, stop all access
to a portal, and — for the practice — list who has access to a patient and suspend one.

Each is one transaction that checks on the server who asks (never the button), changes
once, records it in the access log and queues what others must hear. No Telegram types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot import access, policy
from bot.events import (
    AccessChanged,
    AccessEndedQuietly,
    AccessRenewed,
    OpenCardsClosed,
    RenewalRequested,
)
from bot.notifier import notify
from bot.policy import Change, Rule
from bot.text import clean_email, clean_name
from storage import Database, audit, grants, logins, patients, practitioners
from storage import policy as steps
from storage.db import Reads, Writes, now
from storage.models import AccessEntry, Grant, Patient
from storage.vocabulary import Action, Attempt, GrantKind, GrantStatus, Level


class Outcome(enum.StrEnum):
    DONE = "done"
    NOT_YOURS = "not_yours"  # refused, and audited
    ALREADY = "already"  # nothing to do: decided before, ended, or the rule does not apply


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    grant: Grant | None = None


async def _refused(
    conn: Writes, actor_id: int, grant: Grant | None, ref: int, why: Attempt
) -> Result:
    subject = grant.subject_id if grant else None
    if subject is not None and await patients.get(conn, subject) is None:
        subject = None
    await audit.record(
        conn,
        Action.GRANT_DECIDE,
        outcome="refused",
        actor_patient_id=actor_id,
        subject_patient_id=subject,
        ref_id=ref,
        detail=why,
    )
    return Result(Outcome.NOT_YOURS)


async def _grant_and_subject(conn: Reads, grant_id: int) -> tuple[Grant | None, Patient | None]:
    """The grant and the patient whose portal it opens, as far as each exists."""
    grant = await grants.get(conn, grant_id)
    subject = await patients.get(conn, grant.subject_id) if grant and grant.subject_id else None
    return grant, subject


async def _mine(
    conn: Writes, patient_id: int, grant_id: int, why: Attempt
) -> tuple[Grant, Patient] | Result:
    """The grant and its subject when `patient_id` is the patient whose portal it opens and
    signed in as themself (only they answer for their own portal); else a refusal."""
    grant, subject = await _grant_and_subject(conn, grant_id)
    if (
        grant is None
        or subject is None
        or subject.id != patient_id
        or await logins.for_patient(conn, patient_id) is None
    ):
        return await _refused(conn, patient_id, grant, grant_id, why)
    return grant, subject


def _standing(grant: Grant, subject: Patient) -> bool:
    """Active, and the policy still lets it stand right now."""
    return access.in_force(grant, subject) is not None


def renewable(grant: Grant, subject: Patient) -> bool:
    """Whether Renew would give this access a new term now: it stands, the term covers it
    (access between adults, or kept past the adult age) and the term is on."""
    rules = policy.current()
    covered = grant.kept_at is not None or not policy.as_child(grant, subject, rules)
    return covered and policy.term_end(now(), rules) is not None and _standing(grant, subject)


def keepable(grant: Grant, subject: Patient) -> bool:
    """Whether the young person is offered to keep this access past their adult birthday
    now: it began while they were a child, is not kept yet, and the birthday is within
    the notice before it (as the notice that offers it)."""
    rules = policy.current()
    adult = policy.turns(subject, Rule.ADULT, rules)
    at = now()
    return (
        adult is not None
        and grant.kept_at is None
        and policy.as_child(grant, subject, rules)
        and at < adult <= at + max(rules.notice_days, default=0) * policy.DAY
        and _standing(grant, subject)
    )


async def renew(db: Database, patient_id: int, grant_id: int) -> Result:
    """The patient renews someone's access to their portal: a new term from today. Only
    they can (the person with access can only ask them to)."""
    async with db.transaction() as conn:
        found = await _mine(conn, patient_id, grant_id, Attempt.RENEW)
        if isinstance(found, Result):
            return found
        return await _renew(conn, *found, actor_patient_id=patient_id)


async def renew_by_practice(db: Database, grant_id: int, practitioner_id: int | None) -> Result:
    """A practitioner renews access to a patient who has no login of their own (an adult
    someone looks after); `practitioner_id` None: the CLI. A patient with a login renews
    their own: the practice is refused."""
    async with db.transaction() as conn:
        grant, subject = await _grant_and_subject(conn, grant_id)
        if (
            grant is None
            or subject is None
            or not await _for_the_practice(conn, practitioner_id)
            or await logins.for_patient(conn, subject.id)
        ):
            return Result(Outcome.NOT_YOURS)
        return await _renew(conn, grant, subject, actor_telegram_id=practitioner_id)


async def _renew(
    conn: Writes,
    grant: Grant,
    subject: Patient,
    *,
    actor_patient_id: int | None = None,
    actor_telegram_id: int | None = None,
) -> Result:
    ends = policy.term_end(now(), policy.current())
    if (
        ends is None
        or not renewable(grant, subject)
        or not await steps.renew(conn, grant.id, ends, grant.ends_at)
    ):
        return Result(Outcome.ALREADY, grant)
    await audit.record(
        conn,
        Action.GRANT_RENEWED,
        actor_patient_id=actor_patient_id,
        actor_telegram_id=actor_telegram_id,
        subject_patient_id=subject.id,
        ref_id=grant.id,
    )
    await notify(conn, AccessRenewed(grant, ends, "renewed", f"renewed:{grant.id}:{ends}"))
    return Result(Outcome.DONE, await grants.get(conn, grant.id))


async def ask_to_renew(db: Database, accessor_id: int, grant_id: int) -> Result:
    """The person with access asks the patient whose portal it is to renew it: a notice
    with Renew, once per end date. Only while it stands, has an end date, and the patient
    has a login to renew it with."""
    async with db.transaction() as conn:
        grant, subject = await _grant_and_subject(conn, grant_id)
        if grant is None or subject is None or grant.accessor_id != accessor_id:
            return await _refused(conn, accessor_id, grant, grant_id, Attempt.RENEW)
        if (
            grant.ends_at is None
            or not _standing(grant, subject)
            or await logins.for_patient(conn, subject.id) is None
        ):
            return Result(Outcome.ALREADY, grant)
        await notify(conn, RenewalRequested(grant, grant.ends_at))
        return Result(Outcome.DONE, grant)


async def keep_after_adulthood(db: Database, patient_id: int, grant_id: int) -> Result:
    """The young person keeps someone's access past their adult birthday (one tap per
    person, before it): it goes on, for a term from that birthday."""
    async with db.transaction() as conn:
        found = await _mine(conn, patient_id, grant_id, Attempt.KEEP)
        if isinstance(found, Result):
            return found
        grant, subject = found
        rules = policy.current()
        if (
            not policy.as_child(grant, subject, rules)
            or policy.turns(subject, Rule.ADULT, rules) is None
            or not _standing(grant, subject)
        ):
            return Result(Outcome.ALREADY, grant)
        ends = policy.kept_until(subject, rules)
        if not await steps.keep(conn, grant.id, ends):
            return Result(Outcome.ALREADY, grant)
        await audit.record(
            conn,
            Action.GRANT_KEPT,
            actor_patient_id=patient_id,
            subject_patient_id=subject.id,
            ref_id=grant.id,
        )
        await notify(conn, AccessRenewed(grant, ends, "kept", f"kept:{grant.id}"))
        return Result(Outcome.DONE, await grants.get(conn, grant.id))


async def approve_clinical(db: Database, patient_id: int, grant_id: int) -> Result:
    """The young person lets someone see their clinical records again (access that was
    Clinical before their teen birthday)."""
    async with db.transaction() as conn:
        found = await _mine(conn, patient_id, grant_id, Attempt.KEEP)
        if isinstance(found, Result):
            return found
        grant, subject = found
        rules = policy.current()
        teen = policy.turns(subject, Rule.TEEN, rules)
        was_clinical = grant.level is Level.CLINICAL or (
            teen is not None and await steps.step_taken(conn, f"{Rule.TEEN}:g{grant.id}:{teen}")
        )
        if (
            not was_clinical
            or not policy.as_child(grant, subject, rules)
            or not _standing(grant, subject)
            or not await steps.restore_clinical(conn, grant.id)
        ):
            return Result(Outcome.ALREADY, grant)
        await audit.record(
            conn,
            Action.GRANT_CLINICAL_APPROVED,
            actor_patient_id=patient_id,
            subject_patient_id=subject.id,
            ref_id=grant.id,
        )
        await notify(conn, AccessChanged(grant, Level.CLINICAL, grant.role))
        return Result(Outcome.DONE, await grants.get(conn, grant.id))


async def continue_access(db: Database, patient_id: int, grant_id: int) -> Result:
    """The young person, with their own login, approves someone's access continuing (the
    other answer is bot.access.revoke)."""
    async with db.transaction() as conn:
        found = await _mine(conn, patient_id, grant_id, Attempt.KEEP)
        if isinstance(found, Result):
            return found
        grant, subject = found
        if not _standing(grant, subject) or not await steps.mark_continued(conn, grant.id):
            return Result(Outcome.ALREADY, grant)
        await audit.record(
            conn,
            Action.GRANT_CONTINUED,
            actor_patient_id=patient_id,
            subject_patient_id=subject.id,
            ref_id=grant.id,
        )
        return Result(Outcome.DONE, await grants.get(conn, grant.id))


# --- Stopping access at once -------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    allowed: bool
    ended: int = 0  # access that ended
    declined: int = 0  # requests and offers that will not be decided now


async def stop_all_access(db: Database, actor_id: int, patient_id: int) -> Stopped:
    """Whoever decides for the portal (the patient, or a child's holder) ends every access
    to it, declines every request waiting, and lapses every offer; the cards that asked
    show the outcome. The people who lose access hear only that it ended (DAPB3051)."""
    async with db.transaction() as conn:
        if not await access.may_decide(conn, actor_id, patient_id):
            await audit.record(
                conn,
                Action.GRANT_DECIDE,
                outcome="refused",
                actor_patient_id=actor_id,
                subject_patient_id=patient_id if await patients.get(conn, patient_id) else None,
                ref_id=patient_id,
                detail=Attempt.STOP_ALL,
            )
            return Stopped(False)
        ended = declined = 0
        for entry in await steps.open_on(conn, patient_id):
            grant = entry.grant
            if grant.status is GrantStatus.ACTIVE:
                if await steps.end_by_practice(conn, grant.id, GrantStatus.ACTIVE):
                    ended += 1
                    await audit.record(
                        conn,
                        Action.GRANT_REVOKED,
                        actor_patient_id=actor_id,
                        subject_patient_id=patient_id,
                        ref_id=grant.id,
                        detail="stop_all",
                    )
                    await _tell_quietly(conn, grant, "accessor")
                continue
            if grant.kind is GrantKind.OFFER:
                declined += await grants.lapse_offers_for(conn, patient_id)
            elif await grants.decide(
                conn,
                grant.id,
                status=GrantStatus.DENIED,
                decided_by=actor_id,
                level=grant.level,
                role=grant.role,
            ):
                declined += 1
                await audit.record(
                    conn,
                    Action.GRANT_DENIED,
                    actor_patient_id=actor_id,
                    subject_patient_id=patient_id,
                    ref_id=grant.id,
                    detail="stop_all",
                )
            await _cards_show_outcome(conn, grant.id)
        return Stopped(True, ended, declined)


async def _cards_show_outcome(conn: Writes, grant_id: int) -> None:
    """Every Approve card sent about this request is edited to show what became of it."""
    await notify(conn, OpenCardsClosed(grant_id))


async def _tell_quietly(conn: Writes, grant: Grant, *sides: str) -> None:
    """Access ended: told without who ended it or why."""
    told: list[tuple[int, str]] = []
    for side in sides:
        if side == "accessor":
            to: int | None = grant.accessor_id
        else:
            to = await access.decider_for(conn, grant.subject_id) if grant.subject_id else None
        if to is not None:
            told.append((to, side))
    await notify(conn, AccessEndedQuietly(grant, tuple(told)))


# --- The practice: who has access, and suspending one -------------------------------------


@dataclass(frozen=True)
class AccessLine:
    """One person's access to a patient, as the policy lets it stand right now."""

    entry: AccessEntry  # the grant, and the accessor's name
    level: Level | None  # what it allows now (None: nothing, though not yet swept)
    next: Change | None  # the next change the policy makes to it


async def who_has_access(db: Database, patient_id: int) -> tuple[Patient, list[AccessLine]] | None:
    """The patient and everyone with access to their portal; None for no such patient."""
    async with db.read() as conn:
        return await _who_has_access(conn, patient_id)


async def _who_has_access(conn: Reads, patient_id: int) -> tuple[Patient, list[AccessLine]] | None:
    subject = await patients.get(conn, patient_id)
    if subject is None:
        return None
    entries = await grants.accessors_of(conn, patient_id)
    rules, at = policy.current(), now()
    lines = [
        AccessLine(
            entry,
            policy.in_force(entry.grant, subject, rules, at).level,
            policy.next_change(entry.grant, subject, at, rules),
        )
        for entry in entries
    ]
    return subject, lines


async def _for_the_practice(conn: Reads, practitioner_id: int | None) -> bool:
    """The practice itself (None: its command line) or one of its practitioners, as the
    database says now (never what a button claims)."""
    return practitioner_id is None or await practitioners.get(conn, practitioner_id) is not None


async def _refused_practice(conn: Writes, telegram_id: int, patient_id: int, ref: int) -> None:
    """Someone who is not a practitioner, or a grant not on this patient: audited against
    whoever tapped (their patient, when they are one)."""
    login = await logins.get(conn, telegram_id)
    await audit.record(
        conn,
        Action.GRANT_DECIDE,
        outcome="refused",
        actor_patient_id=login.patient_id if login else None,
        actor_telegram_id=telegram_id,
        subject_patient_id=patient_id if await patients.get(conn, patient_id) else None,
        ref_id=ref,
        detail=Attempt.PRACTICE,
    )


async def find_patients(db: Database, practitioner_id: int, typed: str) -> list[Patient] | None:
    """A practitioner looks a patient up by full name or email (any case), for the list
    of who has access; None when they are not a practitioner (nothing is searched)."""
    email = clean_email(typed)
    name = None if email else clean_name(typed)
    async with db.read() as conn:
        if not await _for_the_practice(conn, practitioner_id):
            return None
        if email:
            found = await patients.by_email(conn, email)
            return [found] if found else []
        return await patients.named(conn, name, FOUND_AT_MOST) if name else []


FOUND_AT_MOST = 20  # patients of one name shown to choose from


async def access_for_practice(
    db: Database, practitioner_id: int, patient_id: int
) -> tuple[Patient, list[AccessLine]] | None:
    """Who has access to a patient, for a practitioner of the practice; None (refused and
    audited) for anyone else, or no such patient."""
    async with db.transaction() as conn:
        found = None
        if await _for_the_practice(conn, practitioner_id):
            found = await _who_has_access(conn, patient_id)
        if found is None:
            await _refused_practice(conn, practitioner_id, patient_id, patient_id)
        return found


async def line_for_practice(
    db: Database, practitioner_id: int, patient_id: int, grant_id: int
) -> tuple[Patient, AccessLine] | None:
    """One person's access to a patient, for a practitioner about to suspend it; None
    (refused and audited) for anyone else, or a grant that is not active on this patient."""
    async with db.transaction() as conn:
        found = None
        if await _for_the_practice(conn, practitioner_id):
            found = await _who_has_access(conn, patient_id)
        line = next((x for x in found[1] if x.entry.grant.id == grant_id), None) if found else None
        if found is None or line is None:
            await _refused_practice(conn, practitioner_id, patient_id, grant_id)
            return None
        return found[0], line


async def suspend_by_practitioner(
    db: Database, grant_id: int, practitioner_id: int | None, patient_id: int | None = None
) -> Result:
    """A practitioner (None: the CLI) ends one person's access to a patient at once. Both
    sides hear that it ended, never who asked (DAPB3051: telling may cause harm); the
    access log says the practice did. With `patient_id`, only a grant on that patient."""
    async with db.transaction() as conn:
        grant, subject = await _grant_and_subject(conn, grant_id)
        if (
            grant is None
            or subject is None
            or (patient_id is not None and grant.subject_id != patient_id)
            or not await _for_the_practice(conn, practitioner_id)
        ):
            if practitioner_id is not None:
                whose = patient_id or (grant.subject_id if grant else None) or 0
                await _refused_practice(conn, practitioner_id, whose, grant_id)
            return Result(Outcome.NOT_YOURS)
        # Access the policy has already ended is the sweep's to record and tell.
        if not _standing(grant, subject) or not await steps.end_by_practice(
            conn, grant.id, GrantStatus.ACTIVE
        ):
            return Result(Outcome.ALREADY, grant)
        await audit.record(
            conn,
            Action.GRANT_SUSPENDED,
            actor_telegram_id=practitioner_id,
            subject_patient_id=grant.subject_id,
            ref_id=grant.id,
        )
        await _tell_quietly(conn, grant, "accessor", "subject")
        return Result(Outcome.DONE, await grants.get(conn, grant.id))
