"""The access rules as a state machine: random histories against a model.

Hypothesis plays random sequences of invites, sign-ins, dependents, requests, decisions,
revocations, changes, switches, views and appointment actions against the real functions
in bot/access.py and bot/invitations.py on a real SQLite file. Next to the database it
keeps a small pure-Python model of who is whom, which grants exist and what state every
appointment is in; after every step it checks the database (and every allow/deny the
access module answers) against that model. A wrong allow is the bug this file hunts.

Time moves too (issue #20): the clock is injected and steps forward, to the minute before
or after a child's birthday or an end date; renewals, keeping access at adulthood,
approving Clinical again and the policy's sweep are steps of their own. The model states
the practice's policy itself, so after every step nobody may have access the policy does
not allow at that moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot import access, invitations, policy, safeguarding
from bot.access import (
    AccessRequest,
    Act,
    ActOutcome,
    Area,
    ChangeOutcome,
    DecisionOutcome,
    Level,
    Relationship,
    RequestOutcome,
    Role,
)
from bot.invitations import InviteRequest, InviteState
from bot.safeguarding import Outcome
from bot.sweep import sweep
from storage import Database, clock, logins, open_database, portal
from storage.clock import FixedClock
from storage.db import now
from storage.models import AuditEvent

if TYPE_CHECKING:
    from tests.conftest import Postgres

T = TypeVar("T")

# 60 histories of up to 50 steps: thousands of steps per run, each followed by a full
# comparison (every actor x subject x area x act), in well under a minute on two cores.
MAX_EXAMPLES = 60
STEPS_PER_EXAMPLE = 50
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS_PER_EXAMPLE,
    deadline=None,  # one step is a handful of SQLite transactions; timing is not the point
    # Shrinking a failing history re-runs it hundreds of times; one bug at a time is enough.
    report_multiple_bugs=False,
)

# On PostgreSQL (tests/conftest.py), fewer: each history gets a database of its own there.
PG_SETTINGS = settings(SETTINGS, max_examples=12)

pytestmark = pytest.mark.both_backends  # the regressions below; the machine has its own

TTL_DAYS = 14
DAY = 86400
HOUR = 3600
DOB = dt.date(1980, 1, 1)
NOWHERE = 987_654_321  # a patient id no row has, as a forged button would carry
FORGED_IDS = (0, NOWHERE)  # grant and appointment ids nobody was given
STRANGER_TG = 999  # a Telegram user who never signed in
TELEGRAM_IDS = (1000, 1001, 1002, 1003, 1004, 1005)  # slot i first signs in as 1000 + i
SLOT_EMAILS = ("p0@example.com", "p1@example.com", "p2@example.com", "p3@example.com")
NEW_EMAIL = "u0@example.com"  # nobody has it until a practitioner invites it
NOBODY_EMAIL = "u1@example.com"  # nobody ever has it
MAX_DEPENDENTS = 2  # keeps the per-step matrix (people^2 x 8 checks) affordable

# The practice's policy, as the model states it (the defaults: bot/policy.py's words).
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SYDNEY)
RULES = policy.Policy(tz=SYDNEY)
TEEN, OWN_LOGIN, ADULT = 12, 14, 18
TERM = 548 * DAY
# A dependent's age when added, in days (the last three: a birthday or two ahead), or None
# for someone born on 29 February 2012; 30 years: an adult someone looks after.
dependent_ages = st.sampled_from((6 * 365, 11 * 365 + 355, 13 * 365 + 358, 17 * 365 + 360, None))
ADULT_DEPENDENT_AGE = 30 * 365
clock_steps = st.sampled_from((60, DAY, 10 * DAY, 100 * DAY, 400 * DAY))
near = st.sampled_from((-60, 0, 60))  # the minute before, the moment, the minute after


def birthday(born: dt.date, age: int) -> int:
    """Midnight in Sydney on the day `born` turns `age` (29 February: 1 March otherwise)."""
    try:
        day = born.replace(year=born.year + age)
    except ValueError:
        day = dt.date(born.year + age, 3, 1)
    return int(dt.datetime.combine(day, dt.time(0), SYDNEY).timestamp())


# The model's own statement of the rules, written out rather than imported from access.py.
LEVEL_AREAS = {
    Level.CLINICAL: frozenset({Area.DETAILS, Area.APPOINTMENTS, Area.INVOICES, Area.RECORDS}),
    Level.ADMINISTRATIVE: frozenset({Area.DETAILS, Area.APPOINTMENTS, Area.INVOICES}),
}
LEVEL_RANK = {Level.ADMINISTRATIVE: 0, Level.CLINICAL: 1}
ROLE_RANK = {Role.VIEW: 0, Role.EDIT: 1}
TRANSITIONS = {
    "cancel": (("booked", "confirmed"), "cancelled", "appointment.cancelled"),
    "confirm": (("booked",), "confirmed", "appointment.confirmed"),
}

pick = st.integers(min_value=0, max_value=255)  # an index into whatever list exists now
levels = st.sampled_from(Level)
roles = st.sampled_from(Role)
# Case and spaces vary as people type them; the last two nobody has (yet).
emails = st.builds(
    lambda base, shout: f"  {base.upper()} " if shout else base,
    st.sampled_from((*SLOT_EMAILS, NEW_EMAIL, NOBODY_EMAIL)),
    st.booleans(),
)
invite_emails = st.sampled_from((*SLOT_EMAILS, NEW_EMAIL, "U0@Example.com", "P2@EXAMPLE.COM"))
# Approve as asked (None, None), or with a level and/or role that may be lower, equal or a
# forged raise.
changes = st.tuples(st.none() | levels, st.none() | roles)


@dataclass
class _Stats:
    examples: int = 0
    checks: int = 0  # full comparisons: one after set-up, then one after every step
    # Checks where a grant exists but the policy allows less than it says, at that moment:
    # limited to Administrative (a teen), or nothing (an adult birthday, an end date).
    limited: int = 0
    ended: int = 0
    answered: int = 0  # renewals, keeps and Clinical approvals that were made


STATS = _Stats()


@dataclass
class MPatient:
    id: int
    email: str | None
    holder: int | None = None
    login: int | None = None  # Telegram user id
    born: dt.date | None = None
    created: int = 0


@dataclass
class MGrant:
    id: int
    accessor: int
    subject: int | None  # None: asked of an email no patient has yet
    email: str | None
    level: Level
    role: Role
    kind: str
    status: str  # exactly what the database holds ('pending' stays until swept)
    expires: int | None = None  # a request's or offer's deadline
    events: list[str] = field(default_factory=list)  # its grant.* audit events (outcome ok)
    began: int | None = None  # when the access began (approved)
    ends: int | None = None  # its end date (access between adults, or kept at adulthood)
    decided_by: int | None = None
    decided_at: int | None = None
    kept: bool = False  # by the young person, past their adult age
    clinical_ok: bool = False  # Clinical approved again by the young person
    teen_done: bool = False  # the sweep limited it at the teen age (once)


@dataclass
class MAppointment:
    id: int
    patient: int
    starts_at: int
    status: str
    events: list[str] = field(default_factory=list)  # ok audit events about it


@dataclass
class MInvite:
    id: int
    token: str
    patient: int
    expires: int
    used: bool = False


def _one(seq: Sequence[T], i: int) -> T:
    return seq[i % len(seq)]


# Where each history's database is: a SQLite file in its directory, or (the PostgreSQL
# run) a fresh database of the session's cluster.
MAKE_DATABASE: list[Callable[[Path], str | Path]] = [lambda folder: folder / "portal.db"]


class AccessMachine(RuleBasedStateMachine):
    """One database, one model, one private event loop per history."""

    def __init__(self) -> None:
        super().__init__()
        # Hypothesis drives this class synchronously; the code under test is async.
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="access-machine-"))
        self.db = open_database(MAKE_DATABASE[0](self.dir))
        self.patients: dict[int, MPatient] = {}
        self.slots: list[int] = []
        self.dependents: list[int] = []
        self.grants: dict[int, MGrant] = {}
        self.appointments: dict[int, MAppointment] = {}
        self.invites: list[MInvite] = []
        self.logins: dict[int, int] = {}  # Telegram user id -> patient id
        self.current: dict[int, int | None] = {}  # Telegram user id -> portal shown (None: own)
        self.started = False
        # The whole process reads this clock and this policy until teardown.
        self._clock = clock.use(FixedClock(START))
        self.clock = self._clock.__enter__()
        self._policy = policy.using(RULES)
        self._policy.__enter__()

    def teardown(self) -> None:
        try:
            self.run(self.db.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            self._policy.__exit__(None, None, None)
            self._clock.__exit__(None, None, None)

    @property
    def now(self) -> int:
        return int(self.clock.time())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    # --- The model ------------------------------------------------------------------------

    @property
    def people(self) -> list[int]:
        return sorted(self.patients)

    @property
    def signed_in(self) -> list[int]:
        return sorted(p.id for p in self.patients.values() if p.login is not None)

    def by_email(self, email: str) -> int | None:
        wanted = email.strip().lower()
        return next(
            (p.id for p in self.patients.values() if p.email and p.email.lower() == wanted), None
        )

    def decider_for(self, subject: int | None) -> int | None:
        """The patient once they have a login; before that, a dependent's holder, while
        they hold them."""
        patient = self.patients.get(subject) if subject is not None else None
        if patient is None:
            return None
        if patient.login is not None:
            return patient.id
        return patient.holder if self.holds(patient) else None

    def holds(self, patient: MPatient) -> bool:
        """A child's holder decides until their adult birthday; the holder of someone added
        as an adult, for as long as they hold them."""
        if patient.holder is None or patient.born is None:
            return patient.holder is not None
        adult = birthday(patient.born, ADULT)
        return not (patient.created < adult <= self.now)

    def childs(self, g: MGrant) -> bool:
        """Access that began while its patient was a child: the age rules apply to it."""
        born = self.patients[g.subject].born if g.subject is not None else None
        return born is not None and g.began is not None and g.began < birthday(born, ADULT)

    def young_approved_clinical(self, g: MGrant) -> bool:
        born = self.patients[g.subject].born  # type: ignore[index]
        assert born is not None
        return g.clinical_ok or (
            g.decided_by == g.subject
            and g.decided_at is not None
            and g.decided_at >= birthday(born, TEEN)
        )

    def level_now(self, g: MGrant | None) -> Level | None:
        """What an active grant allows at this moment under the policy (None: nothing)."""
        if g is None or g.status != "active":
            return None
        child = self.childs(g)
        born = self.patients[g.subject].born if g.subject is not None else None
        if child and not g.kept and self.now >= birthday(born, ADULT):  # type: ignore[arg-type]
            return None
        if g.ends is not None and self.now >= g.ends:
            return None
        if (
            child
            and g.level is Level.CLINICAL
            and self.now >= birthday(born, TEEN)  # type: ignore[arg-type]
            and not self.young_approved_clinical(g)
        ):
            return Level.ADMINISTRATIVE
        return g.level

    def stale(self, g: MGrant) -> bool:
        return g.expires is not None and g.expires <= self.now

    def decider_of(self, grant: MGrant) -> int | None:
        if grant.subject is None:
            return None
        if grant.kind == "offer":
            # An offer carries the holder's consent, which lapses once the dependent has a
            # login and decides for themself, or comes of age: then nobody can accept it.
            subject = self.patients[grant.subject]
            return grant.accessor if subject.login is None and self.holds(subject) else None
        return self.decider_for(grant.subject)

    def active(self, accessor: int, subject: int) -> MGrant | None:
        found = [
            g
            for g in self.grants.values()
            if g.accessor == accessor and g.subject == subject and g.status == "active"
        ]
        assert len(found) <= 1
        return found[0] if found else None

    def is_open(self, accessor: int, subject: int | None, email: str | None) -> bool:
        """A pending (even if stale, until swept) or active grant for this pair."""
        wanted = email.strip().lower() if email else None
        return any(
            g.accessor == accessor
            and g.status in ("pending", "active")
            and (
                (subject is not None and g.subject == subject)
                or (g.subject is None and wanted is not None and g.email.lower() == wanted)  # type: ignore[union-attr]
            )
            for g in self.grants.values()
        )

    def allowed(self, actor: int, subject: int, area: Area, act: Act) -> bool:
        if actor == subject:
            return True
        grant = self.active(actor, subject)
        level = self.level_now(grant)
        if grant is not None and level is not grant.level:
            if level is None:
                STATS.ended += 1
            else:
                STATS.limited += 1
        return (
            grant is not None
            and level is not None
            and area in LEVEL_AREAS[level]
            and (act is Act.VIEW or grant.role is Role.EDIT)
        )

    def in_force(self, accessor: int, subject: int) -> MGrant | None:
        grant = self.active(accessor, subject)
        return grant if self.level_now(grant) is not None else None

    def sweep(self) -> None:
        """What grants.expire_stale does: stale pending requests become expired."""
        for g in self.grants.values():
            if g.status == "pending" and self.stale(g):
                g.status = "expired"

    def expect_viewing(self, tg: int) -> int | None:
        """The portal viewing() must show this login (None: no login), falling back home
        when the chosen grant is gone, as viewing() itself does."""
        me = self.logins.get(tg)
        if me is None:
            return None
        current = self.current[tg]
        if current is not None and self.in_force(me, current) is None:
            self.current[tg] = current = None
        return current if current is not None else me

    # --- Arranging ------------------------------------------------------------------------

    def _invite(self, email: str, name: str = "Invited Patient") -> int:
        new = self.run(
            invitations.create_invite(self.db, InviteRequest(name, DOB, email), TTL_DAYS)
        )
        known = self.by_email(email)
        if known is not None:
            assert new.reused_patient and new.patient.id == known
        else:
            assert not new.reused_patient
            patient = MPatient(new.patient.id, email, born=DOB, created=self.now)
            self.patients[patient.id] = patient
            # Requests made to this email before the patient existed now wait for them.
            for g in sorted(self.grants.values(), key=lambda g: g.id):
                if (
                    g.subject is None
                    and g.status == "pending"
                    and g.email is not None
                    and g.email.lower() == email.lower()
                    and not self.is_open(g.accessor, patient.id, None)
                ):
                    g.subject = patient.id
            self._add_appointments(patient.id, upcoming=1, past=0)
        self.invites.append(
            MInvite(new.invite.id, new.token, new.patient.id, new.invite.expires_at)
        )
        return new.patient.id

    def _add_appointments(self, patient_id: int, upcoming: int, past: int) -> None:
        async def add() -> list[MAppointment]:
            made: list[MAppointment] = []
            async with self.db.transaction() as conn:
                for k in range(upcoming + past):
                    soon = k < upcoming
                    at = now() + (k + 1) * DAY if soon else now() - (k + 2) * DAY
                    status = "booked" if soon or k % 2 else "confirmed"
                    a = await portal.add_appointment(
                        conn, patient_id, at, at + HOUR, "Dr Rao", "Room 1", status
                    )
                    made.append(MAppointment(a.id, patient_id, at, status))
            return made

        for appointment in self.run(add()):
            self.appointments[appointment.id] = appointment

    def _invite_state(self, invite: MInvite, tg: int) -> InviteState:
        mine = self.logins.get(tg)
        holder = self.patients[invite.patient].login
        if mine == invite.patient:
            return InviteState.SIGNED_IN_ALREADY
        if invite.used:
            return InviteState.USED
        if invite.expires <= self.now:
            return InviteState.EXPIRED
        if mine is not None:
            return InviteState.HAS_OTHER_PORTAL
        if holder is not None and holder != tg:
            return InviteState.PORTAL_TAKEN
        return InviteState.VALID

    def _sign_in(self, invite: MInvite, tg: int) -> None:
        expected = self._invite_state(invite, tg)
        check = self.run(invitations.check_invite(self.db, invite.token, tg))
        assert check.state is expected
        assert check.patient is not None and check.patient.id == invite.patient
        assert check.patient.date_of_birth is not None
        born = check.patient.date_of_birth
        result = self.run(invitations.sign_in(self.db, invite.id, tg, "en", born))
        assert result.state is expected
        if expected is InviteState.VALID:
            invite.used = True
            self.logins[tg] = invite.patient
            self.patients[invite.patient].login = tg
            self.current[tg] = None

    @initialize()
    def set_up(self) -> None:
        self.run(self.db.migrate())
        for i, email in enumerate(SLOT_EMAILS):
            self.slots.append(self._invite(email, f"Slot {i}"))
            self._add_appointments(self.slots[-1], upcoming=2, past=1)
        # Three of the four opened their link; the fourth has not yet.
        for i in range(3):
            invite = next(inv for inv in self.invites if inv.patient == self.slots[i])
            self._sign_in(invite, TELEGRAM_IDS[i])
        # Slot 1 already accesses slot 0 (an access between adults, with its end date).
        self.request(1, SLOT_EMAILS[0], Level.CLINICAL, Role.EDIT)
        self._decide(max(self.grants), self.slots[0], True, None, None)
        STATS.examples += 1
        self.started = True

    # --- Invites and sign-in --------------------------------------------------------------

    @rule(email=invite_emails)
    def invite(self, email: str) -> None:
        self._invite(email)

    @rule(invite=pick, tg=st.sampled_from(TELEGRAM_IDS))
    def sign_in(self, invite: int, tg: int) -> None:
        self._sign_in(_one(self.invites, invite), tg)

    @rule(token=st.sampled_from(("", "not a token!", "A" * 65, "x" * 32)), tg=pick)
    def open_a_forged_link(self, token: str, tg: int) -> None:
        who = _one((*TELEGRAM_IDS, STRANGER_TG), tg)
        check = self.run(invitations.check_invite(self.db, token, who))
        expected = InviteState.UNKNOWN if token == "x" * 32 else InviteState.MALFORMED
        assert check.state is expected and check.patient is None

    @rule(holder=pick, dependent=pick)
    def own_login_invite(self, holder: int, dependent: int) -> None:
        self._own_login_invite(_one(self.people, holder), _one(self.people, dependent))

    @precondition(lambda self: self.dependents)
    @rule(dependent=pick)
    def own_login_invite_by_holder(self, dependent: int) -> None:
        child = _one(self.dependents, dependent)
        holder = self.patients[child].holder
        if holder is None:  # grown up: nobody holds them any more (the adult age rule)
            return
        self._own_login_invite(holder, child)

    @precondition(lambda self: self.dependents)
    @rule(dependent=pick)
    def dependent_signs_in(self, dependent: int) -> None:
        """The whole hand-over in one step: from now on the dependent decides for themself."""
        child = _one(self.dependents, dependent)
        holder = self.patients[child].holder
        free = [tg for tg in TELEGRAM_IDS if tg not in self.logins]
        if holder is None:  # grown up: nobody holds them any more (the adult age rule)
            return
        invite = self._own_login_invite(holder, child)
        if invite is not None and free:
            self._sign_in(invite, free[0])

    def _own_login_invite(self, holder: int, dependent: int) -> MInvite | None:
        new = self.run(invitations.create_own_login_invite(self.db, holder, dependent, TTL_DAYS))
        child = self.patients[dependent]
        may = child.holder == holder and child.login is None and self.holds(child)
        assert (new is not None) == may
        if new is None:
            return None
        self.invites.append(MInvite(new.invite.id, new.token, dependent, new.invite.expires_at))
        return self.invites[-1]

    # --- Dependents, requests and offers --------------------------------------------------

    @precondition(lambda self: len(self.dependents) < MAX_DEPENDENTS)
    @rule(creator=pick, level=levels, role=roles, age=dependent_ages, grown=st.booleans())
    def add_dependent(
        self, creator: int, level: Level, role: Role, age: int | None, grown: bool
    ) -> None:
        parent = _one(self.signed_in, creator)
        name = f"Child {len(self.dependents)}"
        request = AccessRequest(name, Relationship.CHILD, None, level, role)
        today = dt.datetime.fromtimestamp(self.now, SYDNEY).date()
        if grown:  # an adult someone looks after: the term, not the age rules
            age = ADULT_DEPENDENT_AGE
        born = dt.date(2012, 2, 29) if age is None else today - dt.timedelta(days=age)
        child, grant = self.run(access.create_dependent(self.db, parent, name, born, request))
        assert grant.status == "active" and grant.accessor_id == parent
        assert (grant.level, grant.role) == (level, role)
        self.patients[child.id] = MPatient(
            child.id, None, holder=parent, born=born, created=self.now
        )
        self.dependents.append(child.id)
        self.grants[grant.id] = MGrant(
            grant.id,
            parent,
            child.id,
            None,
            level,
            role,
            "request",
            "active",
            events=["grant.requested", "grant.approved"],
        )
        self._begins(self.grants[grant.id], parent)
        assert (grant.began_at, grant.ends_at) == (
            self.grants[grant.id].began,
            self.grants[grant.id].ends,
        )
        self._add_appointments(child.id, upcoming=1, past=1)

    def _begins(self, g: MGrant, decider: int) -> None:
        """Approved now: when it began, and (between adults) its end, a term from now."""
        g.began, g.decided_by, g.decided_at = self.now, decider, self.now
        g.ends = None if self.childs(g) else self.now + TERM

    @rule(requester=pick, email=emails, level=levels, role=roles)
    def request(self, requester: int, email: str, level: Level, role: Role) -> None:
        asker = _one(self.people, requester)
        request = AccessRequest("Someone", Relationship.PARTNER, None, level, role)
        result = self.run(access.request_by_email(self.db, asker, email, request, TTL_DAYS))
        self.sweep()  # request_by_email expires stale requests first
        subject = self.by_email(email)
        if subject == asker:
            assert result.outcome is RequestOutcome.SELF and result.grant is None
        elif self.is_open(asker, subject, email):
            assert result.outcome is RequestOutcome.DUPLICATE and result.grant is None
        else:
            assert result.outcome is RequestOutcome.SENT and result.grant is not None
            assert (result.subject.id if result.subject else None) == subject
            assert result.decider_id == (self.decider_for(subject) if subject else None)
            self.grants[result.grant.id] = MGrant(
                result.grant.id,
                asker,
                subject,
                email.strip(),
                level,
                role,
                "request",
                "pending",
                expires=result.grant.expires_at,
                events=["grant.requested"],
            )

    @rule(holder=pick, dependent=pick, email=emails, level=levels, role=roles)
    def offer(self, holder: int, dependent: int, email: str, level: Level, role: Role) -> None:
        self._offer(_one(self.people, holder), _one(self.people, dependent), email, level, role)

    @precondition(lambda self: self.dependents)
    @rule(dependent=pick, email=emails, level=levels, role=roles)
    def offer_by_holder(self, dependent: int, email: str, level: Level, role: Role) -> None:
        child = _one(self.dependents, dependent)
        holder = self.patients[child].holder
        if holder is None:  # grown up: nobody holds them any more (the adult age rule)
            return
        self._offer(holder, child, email, level, role)

    def _offer(self, holder: int, dependent: int, email: str, level: Level, role: Role) -> None:
        grant = self.run(
            access.offer_by_email(self.db, holder, dependent, email, level, role, TTL_DAYS)
        )
        other = self.by_email(email)
        if (
            self.decider_for(dependent) != holder
            or other is None
            or other in (holder, dependent)
            or self.is_open(other, dependent, None)
        ):
            assert grant is None
            return
        assert grant is not None and grant.kind == "offer" and grant.accessor_id == other
        self.grants[grant.id] = MGrant(
            grant.id,
            other,
            dependent,
            None,
            level,
            role,
            "offer",
            "pending",
            expires=grant.expires_at,
            events=["grant.offered"],
        )

    @rule(grant=pick)
    def time_passes(self, grant: int) -> None:
        """A pending request or offer reaches its expiry (nothing swept it yet)."""
        waiting = [g for g in sorted(self.grants) if self.grants[g].status == "pending"]
        if not waiting:
            return
        chosen = self.grants[_one(waiting, grant)]

        async def expire() -> None:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "UPDATE grants SET expires_at = ? WHERE id = ?", (now() - 1, chosen.id)
                )

        self.run(expire())
        chosen.expires = self.now - 1

    @rule(who=pick)
    def waiting_for(self, who: int) -> None:
        decider = _one(self.people, who)
        found = self.run(access.waiting_for(self.db, decider, only_undelivered=False))
        self.sweep()
        held = {
            d
            for d in self.dependents
            if self.patients[d].holder == decider and self.holds(self.patients[d])
        } - {d for d in self.dependents if self.patients[d].login is not None}
        # Requests on themself count even before they sign in: they are delivered then.
        subjects = {decider} | held
        # An offer lapses once its dependent signs in and decides for themself.
        expected = {
            g.id
            for g in self.grants.values()
            if g.status == "pending"
            and (
                (g.kind == "request" and g.subject in subjects)
                or (g.kind == "offer" and self.decider_of(g) == decider)
            )
        }
        assert set(found) == expected and len(found) == len(expected)

    # --- Decisions ------------------------------------------------------------------------

    def _grant_ids(self) -> list[int]:
        return [*sorted(self.grants), *FORGED_IDS]

    def _grant_in(self, status: str, i: int) -> MGrant:
        """Preferably one in this status (where the action can do something), else any."""
        ids = sorted(g.id for g in self.grants.values() if g.status == status)
        return self.grants[_one(ids or sorted(self.grants), i)]

    @rule(grant=pick, who=pick, approve=st.booleans(), change=changes)
    def decide_by_anyone(
        self, grant: int, who: int, approve: bool, change: tuple[Level | None, Role | None]
    ) -> None:
        self._decide(_one(self._grant_ids(), grant), _one(self.people, who), approve, *change)

    @precondition(lambda self: self.grants)
    @rule(grant=pick, approve=st.booleans(), change=changes)
    def decide_by_decider(
        self, grant: int, approve: bool, change: tuple[Level | None, Role | None]
    ) -> None:
        chosen = self._grant_in("pending", grant)
        who = self.decider_of(chosen)
        self._decide(chosen.id, who if who is not None else chosen.accessor, approve, *change)

    @precondition(lambda self: self.grants)
    @rule(grant=pick, who=pick, approve=st.booleans())
    def decide_by_an_insider(self, grant: int, who: int, approve: bool) -> None:
        """The requester, someone who already accesses the subject (letting a third person
        in), or the holder of a dependent who since signed in: none of them may decide."""
        chosen = self._grant_in("pending", grant)
        insiders = [chosen.accessor]
        if chosen.subject is not None:
            insiders += [
                g.accessor
                for g in self.grants.values()
                if g.subject == chosen.subject and g.status == "active"
            ]
            holder = self.patients[chosen.subject].holder
            insiders += [holder] if holder is not None else []
        self._decide(chosen.id, _one(insiders, who), approve, None, None)

    def _decide(
        self, grant_id: int, who: int, approve: bool, level: Level | None, role: Role | None
    ) -> None:
        result = self.run(access.decide(self.db, grant_id, who, approve, level, role))
        g = self.grants.get(grant_id)
        if g is None or g.subject is None or self.decider_of(g) != who:
            assert result.outcome is DecisionOutcome.NOT_YOURS, (result, g, who)
            return
        if g.status != "pending":
            assert result.outcome is DecisionOutcome.ALREADY
            assert result.grant is not None and result.grant.status == g.status
            return
        if self.stale(g):
            self.sweep()
            assert result.outcome is DecisionOutcome.EXPIRED
            return
        new_level, new_role = level or g.level, role or g.role
        if LEVEL_RANK[new_level] > LEVEL_RANK[g.level] or ROLE_RANK[new_role] > ROLE_RANK[g.role]:
            assert result.outcome is DecisionOutcome.INVALID
            return
        assert result.outcome is DecisionOutcome.DECIDED and result.grant is not None
        g.status = "active" if approve else "denied"
        g.level, g.role = new_level, new_role
        g.events.append("grant.approved" if approve else "grant.denied")
        if approve:
            self._begins(g, who)
            assert (result.grant.began_at, result.grant.ends_at) == (g.began, g.ends)
        assert (result.grant.status, result.grant.level, result.grant.role) == (
            g.status,
            g.level,
            g.role,
        )

    # --- Ending and changing access -------------------------------------------------------

    @rule(grant=pick, who=pick, how=st.sampled_from(("revoke", "leave", "withdraw")))
    def end_by_anyone(self, grant: int, who: int, how: str) -> None:
        self._end(_one(self._grant_ids(), grant), _one(self.people, who), how)

    @precondition(lambda self: self.grants)
    @rule(grant=pick, how=st.sampled_from(("revoke", "leave", "withdraw")))
    def end_by_a_party(self, grant: int, how: str) -> None:
        chosen = self._grant_in("pending" if how == "withdraw" else "active", grant)
        who = self.decider_for(chosen.subject) if how == "revoke" else chosen.accessor
        self._end(chosen.id, who if who is not None else chosen.accessor, how)

    def _end(self, grant_id: int, who: int, how: str) -> None:
        act = {"revoke": access.revoke, "leave": access.leave, "withdraw": access.withdraw}[how]
        result = self.run(act(self.db, who, grant_id))
        g = self.grants.get(grant_id)
        if how == "revoke":
            mine = g is not None and g.subject is not None and self.decider_for(g.subject) == who
        elif how == "leave":
            mine = g is not None and g.accessor == who
        else:
            mine = g is not None and g.accessor == who and g.kind == "request"
        if not mine:
            assert result.outcome is ChangeOutcome.NOT_YOURS
            return
        assert g is not None
        if g.status != ("pending" if how == "withdraw" else "active"):
            assert result.outcome is ChangeOutcome.ALREADY
            return
        assert result.outcome is ChangeOutcome.DONE
        g.status = "revoked"
        g.events.append(
            {"revoke": "grant.revoked", "leave": "grant.left"}.get(how, "grant.withdrawn")
        )

    @rule(grant=pick, who=pick, change=changes)
    def change_by_anyone(
        self, grant: int, who: int, change: tuple[Level | None, Role | None]
    ) -> None:
        self._change(_one(self._grant_ids(), grant), _one(self.people, who), *change)

    @precondition(lambda self: self.grants)
    @rule(grant=pick, change=changes, by_accessor=st.booleans())
    def change_by_a_party(
        self, grant: int, change: tuple[Level | None, Role | None], by_accessor: bool
    ) -> None:
        """The subject (or holder) changes access; the accessor trying to raise their own
        access must be refused."""
        chosen = self._grant_in("active", grant)
        who = None if by_accessor else self.decider_for(chosen.subject)
        self._change(chosen.id, who if who is not None else chosen.accessor, *change)

    def _change(self, grant_id: int, who: int, level: Level | None, role: Role | None) -> None:
        result = self.run(access.change_access(self.db, who, grant_id, level, role))
        g = self.grants.get(grant_id)
        if g is None or g.subject is None or self.decider_for(g.subject) != who:
            assert result.outcome is ChangeOutcome.NOT_YOURS
            return
        if g.status != "active":
            assert result.outcome is ChangeOutcome.ALREADY
            return
        assert result.outcome is ChangeOutcome.DONE
        g.level, g.role = level or g.level, role or g.role
        g.decided_by, g.decided_at = who, self.now
        g.events.append("grant.changed")

    # --- Whose portal, views and actions --------------------------------------------------

    def _telegram_ids(self) -> list[int]:
        return [*sorted(self.logins), STRANGER_TG]

    @rule(tg=pick, subject=pick)
    def switch(self, tg: int, subject: int) -> None:
        login = _one(self._telegram_ids(), tg)
        self._switch(login, _one([*self.people, NOWHERE], subject))

    @rule(tg=pick, subject=pick)
    def switch_to_someone_accessed(self, tg: int, subject: int) -> None:
        login = _one(self._telegram_ids(), tg)
        me = self.logins.get(login)
        reachable = sorted(
            g.subject
            for g in self.grants.values()
            if g.accessor == me and g.status == "active" and g.subject is not None
        )
        self._switch(login, _one(reachable or [NOWHERE], subject))

    def _switch(self, tg: int, subject: int) -> None:
        view = self.run(access.switch_to(self.db, tg, subject))
        me = self.logins.get(tg)
        if me is None:
            assert view is None
        elif subject == me:
            assert view is not None and view.own and view.subject.id == me
            self.current[tg] = None
        elif (grant := self.in_force(me, subject)) is not None:
            assert view is not None and view.subject.id == subject and view.me.id == me
            assert view.grant is not None and view.grant.id == grant.id
            self.current[tg] = subject
        else:
            assert view is None  # refused; the earlier choice stays

    @rule(tg=pick, area=st.sampled_from(Area), act=st.sampled_from(Act))
    def view(self, tg: int, area: Area, act: Act) -> None:
        login = _one(self._telegram_ids(), tg)
        view = self.run(access.viewing(self.db, login))
        expected = self.expect_viewing(login)
        if expected is None:
            assert view is None
            return
        assert view is not None and view.subject.id == expected
        result = self.run(access.authorize(self.db, view, area, act, action=f"view.{area}"))
        assert result.allowed == self.allowed(view.me.id, expected, area, act)

    @rule(tg=pick, subject=pick)
    def view_of(self, tg: int, subject: int) -> None:
        login = _one(self._telegram_ids(), tg)
        target = _one([*self.people, NOWHERE], subject)
        signed_in = self.run(self._signed_in(login))  # as a handler asks (bot/context.py)
        view = self.run(
            access.view_of(self.db, login, target, action="view.details", signed_in=signed_in)
        )
        me = self.logins.get(login)
        may = me is not None and (target == me or self.in_force(me, target) is not None)
        assert (view is not None) == may
        if view is None:  # audited against whoever tapped; a forged subject is NULL
            last = self.run(self._last_event())
            assert (last.action, last.outcome, last.actor_telegram_id) == (
                "view.details",
                "refused",
                login,
            )
            assert last.subject_patient_id == (None if target == NOWHERE else target)
        if view is not None:
            assert view.me.id == me and view.subject.id == target

    @rule(
        actor=pick,
        subject=pick,
        appointment=pick,
        action=st.sampled_from(("cancel", "confirm")),
    )
    def act_on_any_appointment(
        self, actor: int, subject: int, appointment: int, action: str
    ) -> None:
        ids = [*sorted(self.appointments), *FORGED_IDS]
        self._act(
            _one(self.people, actor), _one(self.people, subject), _one(ids, appointment), action
        )

    @rule(
        tg=pick,
        theirs=st.booleans(),
        appointment=pick,
        action=st.sampled_from(("cancel", "confirm")),
    )
    def act_in_the_portal_shown(self, tg: int, theirs: bool, appointment: int, action: str) -> None:
        """A button in the portal shown: the subject's own appointment, or (forged) one of
        another patient's appointment ids."""
        login = _one(sorted(self.logins), tg)
        view = self.run(access.viewing(self.db, login))
        expected = self.expect_viewing(login)
        assert view is not None and view.subject.id == expected
        ids = sorted(a.id for a in self.appointments.values() if (a.patient == expected) == theirs)
        self._act(view.me.id, expected, _one(ids or [NOWHERE], appointment), action)

    def _act(self, actor: int, subject: int, appointment_id: int, action: str) -> None:
        outcome = self.run(
            access.act_on_appointment(self.db, actor, subject, appointment_id, action)
        )
        from_statuses, to_status, event = TRANSITIONS[action]
        a = self.appointments.get(appointment_id)
        allowed = self.allowed(actor, subject, Area.APPOINTMENTS, Act.EDIT)
        if not allowed or a is None or a.patient != subject:
            assert outcome is ActOutcome.REFUSED
        elif a.starts_at < self.now or a.status not in from_statuses:
            assert outcome is ActOutcome.ALREADY
        else:
            assert outcome is ActOutcome.DONE
            a.status = to_status
            a.events.append(event)

    # --- Time, and the practice's policy (issue #20) ---------------------------------------

    def _move_to(self, moment: int) -> None:
        """The clock only moves forward."""
        if moment > self.now:
            self.clock.set(moment)

    @rule(seconds=clock_steps)
    def time_flies(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.dependents)
    @rule(dependent=pick, age=st.sampled_from((TEEN, OWN_LOGIN, ADULT)), offset=near)
    def to_a_birthday(self, dependent: int, age: int, offset: int) -> None:
        """The minute before, the moment of, or the minute after a dependent's birthday."""
        born = self.patients[_one(self.dependents, dependent)].born
        assert born is not None
        self._move_to(birthday(born, age) + offset)

    @rule(grant=pick, offset=near)
    def to_an_end_date(self, grant: int, offset: int) -> None:
        ending = sorted(g.ends for g in self.grants.values() if g.ends and g.status == "active")
        if ending:
            self._move_to(_one(ending, grant) + offset)

    def _answers_for(self, g: MGrant, who: int) -> bool:
        """Only the patient whose portal it is, signed in as themself, answers for it."""
        return g.subject == who and self.patients[who].login is not None

    def _answer(self, how: str, grant: int, who: int, by_subject: bool) -> None:
        # Preferably access to someone who can answer for it (signed in themself).
        answerable = sorted(
            g.id
            for g in self.grants.values()
            if g.status == "active" and g.subject and self.patients[g.subject].login
        )
        chosen = (
            self.grants[_one(answerable, grant)] if answerable else self._grant_in("active", grant)
        )
        actor = chosen.subject if by_subject and chosen.subject is not None else None
        actor = actor if actor is not None else _one(self.people, who)
        act = {
            "renew": safeguarding.renew,
            "keep": safeguarding.keep_after_adulthood,
            "clinical": safeguarding.approve_clinical,
        }[how]
        result = self.run(act(self.db, actor, chosen.id))
        if not self._answers_for(chosen, actor):
            assert result.outcome is Outcome.NOT_YOURS, (how, chosen, actor)
            return
        standing = self.level_now(chosen) is not None
        if how == "renew":
            may = standing and (chosen.kept or not self.childs(chosen))
        elif how == "keep":
            may = standing and self.childs(chosen) and not chosen.kept
        else:
            was_clinical = chosen.level is Level.CLINICAL or chosen.teen_done
            may = standing and was_clinical and self.childs(chosen) and not chosen.clinical_ok
        assert result.outcome is (Outcome.DONE if may else Outcome.ALREADY), (how, chosen)
        if not may:
            return
        STATS.answered += 1
        if how == "renew":
            chosen.ends = self.now + TERM
            chosen.events.append("grant.renewed")
        elif how == "keep":
            born = self.patients[actor].born
            assert born is not None
            chosen.kept, chosen.ends = True, birthday(born, ADULT) + TERM
            chosen.events.append("grant.kept")
        else:
            chosen.level, chosen.clinical_ok = Level.CLINICAL, True
            chosen.events.append("grant.clinical_approved")
        assert result.grant is not None and result.grant.ends_at == chosen.ends

    @precondition(lambda self: self.grants)
    @rule(
        how=st.sampled_from(("renew", "keep", "clinical")),
        grant=pick,
        who=pick,
        by_subject=st.booleans(),
    )
    def answer_for_access(self, how: str, grant: int, who: int, by_subject: bool) -> None:
        """Renew, keep at adulthood or approve Clinical again: the patient themself (with a
        login), or anyone else, who is refused."""
        self._answer(how, grant, who, by_subject)

    @rule(twice=st.booleans())
    def policy_sweep(self, twice: bool) -> None:
        """The sweep records what the policy did; run again, it does nothing twice."""
        for _ in range(2 if twice else 1):
            self.run(sweep(self.db, RULES))
        for g in sorted(self.grants.values(), key=lambda g: g.id):
            if g.status != "active" or g.subject is None:
                continue
            born = self.patients[g.subject].born
            child = self.childs(g)
            adult_due = child and not g.kept and self.now >= birthday(born, ADULT)  # type: ignore[arg-type]
            if adult_due or (g.ends is not None and self.now >= g.ends):
                g.status = "expired"
                g.events.append("grant.ended_by_policy")
                continue
            if (
                child
                and g.level is Level.CLINICAL
                and not g.teen_done
                and self.now >= birthday(born, TEEN)  # type: ignore[arg-type]
                and not self.young_approved_clinical(g)
            ):
                g.level, g.teen_done = Level.ADMINISTRATIVE, True
                g.events.append("grant.limited_by_policy")
        for d in self.dependents:
            dependent = self.patients[d]
            if dependent.holder is not None and not self.holds(dependent):
                dependent.holder = None  # released, and the offers that carried their consent
                for g in self.grants.values():
                    if g.subject == d and g.kind == "offer" and g.status == "pending":
                        g.status = "expired"

    # --- After every step -----------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        if not self.started:
            return
        self.run(self._check_rows())
        self.run(self._check_permissions())
        self.run(self._check_viewing())
        STATS.checks += 1

    async def _signed_in(self, tg: int) -> access.SignedIn | None:
        """The login and its patient as an update's first read finds them."""
        async with self.db.read() as conn:
            found = await logins.identity(conn, tg)
        return (found.login, found.patient) if found.login and found.patient else None

    async def _last_event(self) -> AuditEvent:
        async with self.db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT * FROM audit_events ORDER BY id DESC LIMIT 1"
            )
        return AuditEvent.model_validate(dict(next(iter(rows))))

    async def _check_rows(self) -> None:
        async with self.db.read() as conn:
            cur = await conn.execute(
                "SELECT id, accessor_id, subject_id, subject_email, level, role, status, kind,"
                " expires_at, began_at, ends_at FROM grants"
            )
            grant_rows = [tuple(r) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT ref_id, action FROM audit_events WHERE outcome = 'ok'"
                " AND action LIKE 'grant.%' ORDER BY id"
            )
            grant_events = [tuple(r) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT ref_id, action FROM audit_events WHERE outcome = 'ok'"
                " AND action IN ('appointment.cancelled', 'appointment.confirmed') ORDER BY id"
            )
            appointment_events = [tuple(r) for r in await cur.fetchall()]
            cur = await conn.execute("SELECT id, patient_id, status FROM appointments")
            appointment_rows = [tuple(r) for r in await cur.fetchall()]
            cur = await conn.execute("SELECT telegram_user_id, patient_id FROM logins")
            login_rows = dict(tuple(r) for r in await cur.fetchall())
            cur = await conn.execute("SELECT id, email, holder_id FROM patients")
            patient_rows = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
        at = now()

        # Straight from the database, whatever the model says: one open grant per pair,
        # at most one decision per request, and no grant in force without its approval.
        open_pairs = Counter(
            (r[1], r[2]) for r in grant_rows if r[6] in ("pending", "active") and r[2] is not None
        )
        assert all(n == 1 for n in open_pairs.values()), open_pairs
        decisions = Counter(
            ref for ref, action in grant_events if action in ("grant.approved", "grant.denied")
        )
        assert all(n == 1 for n in decisions.values()), decisions
        approved = {ref for ref, action in grant_events if action == "grant.approved"}
        assert all(r[0] in approved for r in grant_rows if r[6] == "active")

        # And row for row, event for event, as the model has it.
        assert {r[0]: (r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in grant_rows} == {
            g.id: (g.accessor, g.subject, g.email, g.level, g.role, g.status, g.kind)
            for g in self.grants.values()
        }
        for r in grant_rows:
            if r[6] == "pending":
                assert (r[8] <= at) == self.stale(self.grants[r[0]]), r
            assert (r[9], r[10]) == (self.grants[r[0]].began, self.grants[r[0]].ends), r
        events: dict[int, list[str]] = {}
        for ref, action in grant_events:
            events.setdefault(ref, []).append(action)
        assert events == {g.id: g.events for g in self.grants.values() if g.events}
        assert {r[0]: (r[1], r[2]) for r in appointment_rows} == {
            a.id: (a.patient, a.status) for a in self.appointments.values()
        }
        acted: dict[int, list[str]] = {}
        for ref, action in appointment_events:
            acted.setdefault(ref, []).append(action)
        assert acted == {a.id: a.events for a in self.appointments.values() if a.events}
        assert login_rows == self.logins
        assert patient_rows == {p.id: (p.email, p.holder) for p in self.patients.values()}

    async def _check_permissions(self) -> None:
        """Every actor x subject x area x act, the nobody id included, answered now."""
        everyone = [*self.people, NOWHERE]
        async with self.db.read() as conn:
            for actor in everyone:
                for subject in everyone:
                    for area in Area:
                        for act in Act:
                            answer = await access.permission(conn, actor, subject, area, act)
                            expected = self.allowed(actor, subject, area, act)
                            assert answer.allowed == expected, (actor, subject, area, act)

    async def _check_viewing(self) -> None:
        """viewing() never shows a portal this login may not see; a lost grant sends it home."""
        for tg in (*TELEGRAM_IDS, STRANGER_TG):
            chosen = self.current.get(tg)
            expected = self.expect_viewing(tg)
            view = await access.viewing(self.db, tg)
            if expected is None:
                assert view is None
                continue
            assert view is not None and view.me.id == self.logins[tg]
            assert view.subject.id == expected
            if expected == view.me.id:
                assert view.own
            else:
                grant = self.active(view.me.id, expected)
                assert grant is not None and view.grant is not None
                assert view.grant.id == grant.id
            if chosen is not None and chosen != expected:
                assert view.lost is not None and view.own
        async with self.db.read() as conn:
            cur = await conn.execute("SELECT telegram_user_id, current_subject_id FROM logins")
            shown = dict(tuple(r) for r in await cur.fetchall())
        assert shown == self.current


class _Summary:
    """Prints one line at the end of the session, whatever -s or -q say."""

    def __init__(self, line: str) -> None:
        self.line = line

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(self.line)


def test_access_rules_hold_over_random_histories(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    _explore(request, record_property, SETTINGS)


def test_access_rules_hold_over_random_histories_on_postgresql(
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    postgres: Postgres,
) -> None:
    """The same machine on PostgreSQL, with fewer histories: the rules are the same code,
    what differs is the SQL under them."""
    MAKE_DATABASE.insert(0, lambda folder: postgres.fresh())
    try:
        _explore(request, record_property, PG_SETTINGS, on="PostgreSQL")
    finally:
        MAKE_DATABASE.pop(0)


def _explore(
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    config: Any,
    on: str = "SQLite",
) -> None:
    examples, checks = STATS.examples, STATS.checks
    limited, ended, answered = STATS.limited, STATS.ended, STATS.answered
    started = time.perf_counter()
    run_state_machine_as_test(AccessMachine, settings=config)
    examples, checks = STATS.examples - examples, STATS.checks - checks
    limited, ended = STATS.limited - limited, STATS.ended - ended
    answered = STATS.answered - answered
    steps = checks - examples  # one check follows set-up; every other one follows a step
    line = (
        f"access state machine on {on}: {steps} steps in {examples} histories, each step checked "
        f"against the model, in {time.perf_counter() - started:.1f}s; the policy limited "
        f"{limited} and ended {ended} checked accesses, {answered} renewals, keeps or "
        "approvals made"
    )
    record_property("state_machine_steps", steps)
    manager = request.config.pluginmanager
    if not manager.has_plugin(f"access-state-machine-summary-{on}"):
        manager.register(_Summary(line), f"access-state-machine-summary-{on}")
    # Far fewer steps than configured would mean the machine stopped exploring.
    assert steps >= config.max_examples * STEPS_PER_EXAMPLE // 2, line
    # And time did what it is there for: end dates and adult birthdays were crossed (the
    # full run's many histories; PostgreSQL's few may miss one). A child limited at the teen
    # age needs a young Clinical dependent and then that birthday, and a run of ~60 random
    # histories crossed none about one time in five (CI failed on it); answers to the policy
    # (renew, keep, approve Clinical) need a longer chain still. The line reports both;
    # test_the_machine_follows_a_child_past_each_birthday below walks the machine through
    # the teen limit for sure, and tests/test_safeguarding_chat.py makes each answer.
    assert ended or on != "SQLite", line


def test_the_machine_follows_a_child_past_each_birthday() -> None:
    """One history written out, through the machine's own steps and its full check after
    each: a young child's Clinical access is limited at the teen age, then ends at
    adulthood. Random runs reach the teen limit only now and then."""
    machine = AccessMachine()
    steps: list[Callable[[], object]] = [
        machine.set_up,
        lambda: machine.add_dependent(0, Level.CLINICAL, Role.EDIT, 6 * 365, grown=False),
        lambda: machine.to_a_birthday(0, TEEN, -60),
        lambda: machine.to_a_birthday(0, TEEN, 60),  # limited now, before the sweep says so
        lambda: machine.policy_sweep(twice=True),
        lambda: machine.to_a_birthday(0, ADULT, 0),
        lambda: machine.policy_sweep(twice=False),
    ]
    limited, ended = [], []
    try:
        for step in steps:
            step()
            machine.database_agrees_with_the_model()
            limited.append(STATS.limited)
            ended.append(STATS.ended)
        child = machine.grants[max(machine.grants)]
        assert (child.level, child.teen_done, child.status) == (
            Level.ADMINISTRATIVE,
            True,
            "expired",
        )
        assert child.events[-2:] == ["grant.limited_by_policy", "grant.ended_by_policy"]
    finally:
        machine.teardown()
    # The minute before twelve, nothing; from twelve (before and after the sweep) limited;
    # at eighteen, ended.
    assert limited[2] == limited[1] < limited[3] and ended[5] > ended[4], (limited, ended)


# --- Regressions the machine found, as plain tests -------------------------------------------


async def _signed_in(db: Database, name: str, email: str, tg: int) -> int:
    new = await invitations.create_invite(db, InviteRequest(name, DOB, email), TTL_DAYS)
    assert (await invitations.sign_in(db, new.invite.id, tg, "en", DOB)).state is InviteState.VALID
    return new.patient.id


async def test_an_open_offer_lapses_once_the_dependent_has_their_own_login(db: Database) -> None:
    """Mum shares Mia with Dad; before Dad answers, Mia signs in with her own login and from
    then on decides who sees her records. Dad accepting Mum's old offer used to give him
    Clinical/Edit access to Mia's portal that Mia never approved."""
    mum = await _signed_in(db, "Mum", "mum@example.com", 1)
    dad = await _signed_in(db, "Dad", "dad@example.com", 2)
    mia, _ = await access.create_dependent(
        db,
        mum,
        "Mia",
        dt.date(2008, 1, 1),
        AccessRequest("Mia", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    offer = await access.offer_by_email(
        db, mum, mia.id, "dad@example.com", Level.CLINICAL, Role.EDIT, TTL_DAYS
    )
    own = await invitations.create_own_login_invite(db, mum, mia.id, TTL_DAYS)
    assert offer is not None and own is not None
    signed = await invitations.sign_in(db, own.invite.id, 3, "en", dt.date(2008, 1, 1))
    assert signed.state is InviteState.VALID

    for approve in (True, False):
        result = await access.decide(db, offer.id, dad, approve)
        assert result.outcome is DecisionOutcome.NOT_YOURS
    async with db.read() as conn:
        for area in Area:
            assert not (await access.permission(conn, dad, mia.id, area, Act.VIEW)).allowed
    info = await access.request_info(db, offer.id)
    assert info is not None and info.decider_id is None  # nobody is sent the offer any more
    # Before the hand-over, the offer is Dad's to accept, as ever.
    leo, _ = await access.create_dependent(
        db,
        mum,
        "Leo",
        dt.date(2019, 1, 1),
        AccessRequest("Leo", Relationship.SON, None, Level.ADMINISTRATIVE, Role.VIEW),
    )
    second = await access.offer_by_email(
        db, mum, leo.id, "dad@example.com", Level.ADMINISTRATIVE, Role.VIEW, TTL_DAYS
    )
    assert second is not None
    assert (await access.decide(db, second.id, dad, True)).outcome is DecisionOutcome.DECIDED


async def test_asking_twice_for_an_unknown_email_is_a_duplicate_however_it_is_typed(
    db: Database,
) -> None:
    """The second request used to miss the first (stored stripped, looked up as typed) and
    fail on the one-pending-request-per-email index instead of answering 'duplicate'."""
    bob = await _signed_in(db, "Bob", "bob@example.com", 1)
    ask = AccessRequest("Someone", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
    first = await access.request_by_email(db, bob, "new@example.com", ask, TTL_DAYS)
    again = await access.request_by_email(db, bob, "  NEW@example.com ", ask, TTL_DAYS)
    assert first.outcome is RequestOutcome.SENT
    assert again.outcome is RequestOutcome.DUPLICATE and again.grant is None
