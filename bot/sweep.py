"""The sweep: the practice's policy (bot/policy.py) carried out over time.

bot/access.py already applies the policy at the moment of every request; the sweep does
what a moment cannot: it tells both sides ahead of each change (PORTAL_NOTICE_DAYS), records
each change in the access log as done by the practice's policy, tidies what is stored (an
ended grant becomes 'expired', a limited one Administrative, a holder is released), gives
end dates to access the term covers, asks a practitioner to invite a young person to their
own login, and asks the young person to approve the access others have.

It runs every few minutes inside the bot (sweep_job) and on demand (`python -m bot sweep`).
Each change is made once: its step key (storage/policy.py take_step) is written in the
transaction that makes it, and every notice has an outbox dedupe key, so running it twice,
restarting half-way or running it on two workers at once changes and tells nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from bot import policy
from bot.events import PolicyNotice
from bot.notifier import notify
from bot.policy import DAY, Change, Policy, Rule
from bot.reminders import queue_due_reminders
from storage import Database, audit, clock, grants, patients
from storage import policy as steps
from storage.db import Writes
from storage.models import Grant, Patient
from storage.outbox import Kind
from storage.vocabulary import Action, GrantStatus, Level

if TYPE_CHECKING:
    from bot.context import PortalContext

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 300  # inside the bot; the access check itself never waits for it
PAGE = 200  # rows read at a time


@dataclass
class SweepReport:
    """What a sweep did (or, dry, would do): one line per change and per notice."""

    at: int
    dry_run: bool = False
    changes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would make" if self.dry_run else "made"
        told = "would queue" if self.dry_run else "queued"
        return f"{verb} {len(self.changes)} changes, {told} {len(self.notices)} notices"


async def sweep(
    db: Database, rules: Policy, at: int | None = None, *, dry_run: bool = False
) -> SweepReport:
    """Everything the policy has to do at `at` (default: now), once. What it writes is
    stamped by the clock, so `at` should be the clock's now: `python -m bot sweep --at`
    moves the clock for its run."""
    run = _Run(db, rules, clock.now() if at is None else at, dry_run)
    await run.grants()
    await run.held()
    return run.report


async def sweep_job(context: PortalContext) -> None:
    """The bot's job queue runs this every SWEEP_EVERY_S; what it queues goes out at once."""
    p = context.portal
    try:
        if not await p.lead.check():
            return  # another worker sweeps for all of them
        report = await sweep(p.db, policy.current())
        reminded = await queue_due_reminders(p.db, p.settings, clock.now())
    except Exception:  # tried again at the next run; each step is all or nothing
        log.exception("the sweep failed")
        return
    if report.changes or report.notices:
        log.info("policy sweep: %s", report.summary())
    if reminded.messages:
        log.info("reminders: %s", reminded.line())
    if report.changes or report.notices or reminded.messages:
        p.sender.wake()


def _day(at: int, rules: Policy) -> str:
    """A moment for the operator's report: ISO, in the practice's time zone."""
    local = dt.datetime.fromtimestamp(at, rules.tz).replace(tzinfo=None)
    return local.isoformat(sep=" ", timespec="minutes")


class _Run:
    def __init__(self, db: Database, rules: Policy, at: int, dry_run: bool) -> None:
        self.db = db
        self.rules = rules
        self.at = at
        self.dry_run = dry_run
        self.report = SweepReport(at, dry_run)
        self.ends_by = at + max(rules.notice_days, default=0) * DAY

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Writes]:
        """One grant's or patient's steps in one transaction. A dry run only reads: every
        write below is skipped when `dry_run` is set."""
        if self.dry_run:
            async with self.db.read() as conn:
                yield cast(Writes, conn)
        else:
            async with self.db.transaction() as conn:
                yield conn

    # --- Writes that a dry run only reports ------------------------------------------------

    async def step(self, conn: Writes, key: str, rule: Rule, due: int, **about: int | None) -> bool:
        if self.dry_run:
            return not await steps.step_taken(conn, key)
        return await steps.take_step(conn, key, rule, due, **about)

    async def tell(self, conn: Writes, kind: Kind, key: str, line: str, **message: Any) -> None:
        if self.dry_run:
            if not await steps.queued(conn, key):
                self.report.notices.append(line)
            return
        if not await steps.queued(conn, key):
            await notify(conn, PolicyNotice(kind, key, message))
            self.report.notices.append(line)

    async def record(self, conn: Writes, action: Action, **event: Any) -> None:
        if not self.dry_run:
            await audit.record(conn, action, **event)

    # --- Grants --------------------------------------------------------------------------

    async def grants(self) -> None:
        after = 0
        while True:
            async with self.db.read() as conn:
                page = await steps.grants_to_sweep(
                    conn,
                    ends_by=self.ends_by,
                    majority=self.rules.majority,
                    term=bool(self.rules.term_days),
                    after_id=after,
                    limit=PAGE,
                )
            for grant, _subject, _login in page:
                await self.grant(grant.id)
            if len(page) < PAGE:
                return
            after = page[-1][0].id

    async def grant(self, grant_id: int) -> None:
        async with self.session() as conn:
            grant = await grants.get(conn, grant_id)
            if grant is None or grant.status is not GrantStatus.ACTIVE or not grant.subject_id:
                return
            subject = await patients.get(conn, grant.subject_id)
            accessor = await patients.get(conn, grant.accessor_id)
            if subject is None or accessor is None:
                return
            has_login = await steps.has_login(conn, subject.id)
            about = _About(grant, accessor, subject, has_login)
            if policy.needs_end_date(grant, subject, self.rules):
                await self.end_date(conn, about)
                grant = about.grant
            scheduled = policy.changes(grant, subject, self.rules)
            due = [c for c in scheduled if self.at >= c.at]
            ending = [c for c in due if c.rule is not Rule.TEEN]
            # Catching up (the sweep did not run on the day): once the access has ended,
            # the limits before that end are not recorded after the fact.
            for change in ending[:1] or due:
                if await self.apply(conn, about, change):
                    return  # the access has ended: nothing more to do or say
            for change in scheduled:
                days = policy.notice_due(change, self.rules, self.at)
                if days is not None:
                    await self.ahead(conn, about, change, days)
            if has_login and policy.as_child(grant, subject, self.rules):
                await self.review(conn, about)

    def sides(self, about: _About) -> list[tuple[str, int]]:
        """Who hears about a change of this access: the person with access, and whoever
        decides for the portal (the patient with a login, else their holder)."""
        found = [("accessor", about.grant.accessor_id)]
        subject = about.subject
        if about.has_login:
            found.append(("subject", subject.id))
        elif (
            subject.holder_id is not None
            and subject.holder_id != about.grant.accessor_id
            and policy.holds(subject, self.rules, self.at)
        ):
            found.append(("holder", subject.holder_id))
        return found

    async def end_date(self, conn: Writes, about: _About) -> None:
        """Access the term covers that has no end date (it existed before the term, or
        was kept while the term was off) gets one from today, and both sides hear so."""
        ends = policy.term_end(self.at, self.rules)
        assert ends is not None
        if not self.dry_run and not await steps.give_end_date(conn, about.grant.id, ends):
            return
        about.grant = about.grant.model_copy(update={"ends_at": ends})
        self.report.changes.append(
            f"gave {about.names} an end date: {_day(ends, self.rules)} "
            f"(rule {Rule.TERM}) [grant {about.grant.id}]"
        )
        await self.record(
            conn,
            Action.POLICY_END_DATE,
            subject_patient_id=about.subject.id,
            ref_id=about.grant.id,
            detail=Rule.TERM,
        )
        for side, patient_id in self.sides(about):
            await self.tell(
                conn,
                Kind.END_DATE_SET,
                f"end_date:{about.grant.id}:{ends}:{patient_id}",
                f"told patient {patient_id} ({side}): {about.names} now ends on "
                f"{_day(ends, self.rules)} [grant {about.grant.id}]",
                ref_id=about.grant.id,
                patient_id=patient_id,
                detail={"as": side, "at": ends},
            )

    async def apply(self, conn: Writes, about: _About, change: Change) -> bool:
        """A change whose time has come, once; True when it ended the access."""
        grant = about.grant
        key = f"{change.rule}:g{grant.id}:{change.at}"
        if not await self.step(conn, key, change.rule, change.at, grant_id=grant.id):
            return False
        ends = change.rule is not Rule.TEEN
        if not self.dry_run:
            write = steps.expire if ends else steps.lower_to_administrative
            await write(conn, grant.id)
        what = "ended" if ends else f"limited to {Level.ADMINISTRATIVE}"
        self.report.changes.append(
            f"{what}: {about.names} (rule {change.rule}, due {_day(change.at, self.rules)}) "
            f"[grant {grant.id}]"
        )
        await self.record(
            conn,
            Action.POLICY_ENDED if ends else Action.POLICY_LIMITED,
            subject_patient_id=about.subject.id,
            ref_id=grant.id,
            detail=change.rule,
        )
        for side, patient_id in self.sides(about):
            await self.tell(
                conn,
                Kind.POLICY_DONE,
                f"done:{change.rule}:{grant.id}:{change.at}:{patient_id}",
                f"told patient {patient_id} ({side}): {what} (rule {change.rule}) "
                f"[grant {grant.id}]",
                ref_id=grant.id,
                patient_id=patient_id,
                detail={"as": side, "rule": change.rule},
            )
        return ends

    async def ahead(self, conn: Writes, about: _About, change: Change, days: int) -> None:
        """Both sides hear `days` ahead what will change, and what they can do."""
        grant = about.grant
        for side, patient_id in self.sides(about):
            await self.tell(
                conn,
                Kind.POLICY_AHEAD,
                f"ahead:{change.rule}:{grant.id}:{change.at}:{days}:{patient_id}",
                f"told patient {patient_id} ({side}): {about.names} changes on "
                f"{_day(change.at, self.rules)} (rule {change.rule}, {days} days ahead) "
                f"[grant {grant.id}]",
                ref_id=grant.id,
                patient_id=patient_id,
                detail={"as": side, "rule": change.rule, "at": change.at, "days": days},
                lapses_at=change.at,
            )
        if change.rule is Rule.TERM and not about.has_login:
            # Nobody can renew it for a patient without a login but the practice.
            staff = await steps.practitioner_for(conn, about.subject.id)
            if staff is not None:
                await self.tell(
                    conn,
                    Kind.RENEWAL_ASKED,
                    f"renewal:{grant.id}:{change.at}:{days}",
                    f"asked practitioner {staff} to renew or end {about.names} "
                    f"(ends {_day(change.at, self.rules)}) [grant {grant.id}]",
                    ref_id=grant.id,
                    chat_id=staff,
                    detail={"at": change.at, "days": days},
                    lapses_at=change.at,
                )

    async def review(self, conn: Writes, about: _About) -> None:
        """The young person, with their own login, is asked about each person's access:
        whether it continues (from the own-login age) and whether Clinical comes back
        (from the teen age). Until they answer, nothing changes."""
        grant, subject = about.grant, about.subject
        if grant.decided_by == subject.id:
            return  # they decided this access themselves
        own = policy.turns(subject, Rule.OWN_LOGIN, self.rules)
        if own is not None and self.at >= own and grant.continued_at is None:
            await self.tell(
                conn,
                Kind.YOUNG_REVIEW,
                f"review:continue:{grant.id}",
                f"asked patient {subject.id} whether {about.names} continues [grant {grant.id}]",
                ref_id=grant.id,
                patient_id=subject.id,
                detail={"what": "continue"},
            )
        teen = policy.turns(subject, Rule.TEEN, self.rules)
        if teen is None or self.at < teen or grant.clinical_ok_at is not None:
            return
        limited = grant.level is Level.CLINICAL or await steps.step_taken(
            conn, f"{Rule.TEEN}:g{grant.id}:{teen}"
        )
        if limited:
            await self.tell(
                conn,
                Kind.YOUNG_REVIEW,
                f"review:clinical:{grant.id}",
                f"asked patient {subject.id} whether {about.names} may be Clinical again "
                f"[grant {grant.id}]",
                ref_id=grant.id,
                patient_id=subject.id,
                detail={"what": "clinical"},
            )

    # --- Held patients: their own login, and the end of holdership -------------------------

    async def held(self) -> None:
        after = 0
        while True:
            async with self.db.read() as conn:
                page = await steps.held_to_sweep(
                    conn, majority=self.rules.majority, after_id=after, limit=PAGE
                )
            for patient, _login in page:
                await self.patient(patient.id)
            if len(page) < PAGE:
                return
            after = page[-1][0].id

    async def patient(self, patient_id: int) -> None:
        async with self.session() as conn:
            subject = await patients.get(conn, patient_id)
            if subject is None or subject.holder_id is None or subject.date_of_birth is None:
                return
            majority = policy.birthday(subject.date_of_birth, self.rules.majority, self.rules.tz)
            if subject.created_at >= majority:
                return  # an adult someone looks after: the age rules are not theirs
            has_login = await steps.has_login(conn, subject.id)
            own = policy.turns(subject, Rule.OWN_LOGIN, self.rules)
            adult = policy.turns(subject, Rule.ADULT, self.rules)
            if (
                own is not None
                and self.at >= own
                and not has_login
                and (adult is None or self.at < adult)
            ):
                await self.own_login(conn, subject, own)
            if adult is not None and self.at >= adult:
                await self.holder_ends(conn, subject, adult, has_login)

    async def own_login(self, conn: Writes, subject: Patient, due: int) -> None:
        if not await self.step(
            conn,
            f"{Rule.OWN_LOGIN}:p{subject.id}:{due}",
            Rule.OWN_LOGIN,
            due,
            patient_id=subject.id,
        ):
            return
        self.report.changes.append(
            f"offered {subject.full_name} their own login (rule {Rule.OWN_LOGIN}) "
            f"[patient {subject.id}]"
        )
        await self.record(
            conn, Action.POLICY_OWN_LOGIN, subject_patient_id=subject.id, detail=Rule.OWN_LOGIN
        )
        await self.ask_to_invite(conn, subject, Rule.OWN_LOGIN)

    async def holder_ends(self, conn: Writes, subject: Patient, due: int, has_login: bool) -> None:
        if not await self.step(
            conn, f"{Rule.ADULT}:p{subject.id}:{due}", Rule.ADULT, due, patient_id=subject.id
        ):
            return
        if not self.dry_run:
            await patients.release_from_holder(conn, subject.id)
            # An offer the holder made carries their consent, which has now lapsed.
            await grants.lapse_offers_for(conn, subject.id)
        self.report.changes.append(
            f"ended patient {subject.holder_id}'s holding of {subject.full_name}'s account "
            f"(rule {Rule.ADULT}) [patient {subject.id}]"
        )
        await self.record(
            conn, Action.POLICY_HOLDER_ENDED, subject_patient_id=subject.id, detail=Rule.ADULT
        )
        if has_login:  # they decide for themself already: the holder hears it is over
            await self.tell_holder(conn, subject, Rule.ADULT, asked=False)
        else:
            await self.ask_to_invite(conn, subject, Rule.ADULT)

    async def ask_to_invite(self, conn: Writes, subject: Patient, rule: Rule) -> None:
        """A practitioner (the one who invited the holder, or else any) is asked to send
        the young person an invite; the holder is told."""
        staff = await steps.practitioner_for(conn, subject.holder_id)
        if staff is not None:
            await self.tell(
                conn,
                Kind.INVITE_ASKED,
                f"invite:{rule}:{subject.id}",
                f"asked practitioner {staff} to invite {subject.full_name} "
                f"(rule {rule}) [patient {subject.id}]",
                ref_id=subject.id,
                chat_id=staff,
                detail={"rule": rule},
            )
        await self.tell_holder(conn, subject, rule, asked=staff is not None)

    async def tell_holder(self, conn: Writes, subject: Patient, rule: Rule, *, asked: bool) -> None:
        """The holder hears what changed for the account they hold (their own login on
        offer, or holding it no more), and whether the practice was asked to invite them.
        Once: its key is the outbox's, written in the step's transaction."""
        await self.tell(
            conn,
            Kind.HOLDER_TOLD,
            f"holder:{rule}:{subject.id}",
            f"told patient {subject.holder_id} (holder) about {subject.full_name} "
            f"(rule {rule}) [patient {subject.id}]",
            ref_id=subject.id,
            patient_id=subject.holder_id,
            detail={"rule": rule, "asked": asked},
        )


@dataclass
class _About:
    """A grant with the two people it is between, as read in the step's transaction."""

    grant: Grant
    accessor: Patient
    subject: Patient
    has_login: bool

    @property
    def names(self) -> str:
        return f"{self.accessor.full_name}'s access to {self.subject.full_name}"
