"""The practice's safeguarding policy as pure rules (issue #20): no Telegram, no SQL, no
clock of its own. Given a grant, the patient whose portal it opens, the young person's
decisions (stored on the grant), the policy and a moment, it says what access applies at
that moment and what changes next. bot/access.py applies it to every request; the sweep
(bot/sweep.py) tells people ahead of each change and records it when it comes.

The rules (ages are birthdays at midnight in the practice's time zone; someone born on
29 February turns a year older on 1 March in other years):

- Access that began while the patient was a child (before the adult age) follows the age
  rules; access between adults follows the term. Whoever is a dependent as an adult is
  covered by the term too.
- TEEN: from the teen-age birthday, such access is at most Administrative; Clinical comes
  back for a person only once the young person approves it (`clinical_ok_at`).
- OWN_LOGIN: from that birthday the young person is offered a login of their own; once they
  have one, each person's access continues only if they approve it (`continued_at`, or
  they revoke it); until they decide, nothing changes.
- ADULT: on that birthday such access ends unless the young person kept it (`kept_at`),
  and whoever held their account no longer decides for them. Kept access then runs for a
  term from that birthday, like access between adults.
- TERM: access between adults ends at its end date (`ends_at`), unless renewed.

An age of 0 turns its rule off; with the adult age off, who counts as a child (for which
rules apply) is still decided at MAJORITY_WHEN_OFF.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.settings import Settings
from storage.models import Grant, Patient
from storage.vocabulary import GrantStatus, Level

DAY = 86400
MAJORITY_WHEN_OFF = 18  # who is a child, when PORTAL_ADULT_AGE turns the adult rule off
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")


class Rule(enum.StrEnum):
    """A rule of the policy, by the name the access log and the notices give it."""

    TEEN = "teen"
    OWN_LOGIN = "own_login"
    ADULT = "adult"
    TERM = "term"


@dataclass(frozen=True)
class Policy:
    teen_age: int = 12
    own_login_age: int = 14
    adult_age: int = 18
    term_days: int = 548
    notice_days: tuple[int, ...] = (30, 7)  # largest first
    tz: dt.tzinfo = SYDNEY

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            teen_age=settings.teen_age,
            own_login_age=settings.own_login_age,
            adult_age=settings.adult_age,
            term_days=settings.proxy_term_days,
            notice_days=settings.notice_days,
            tz=settings.tz,
        )

    @property
    def majority(self) -> int:
        """The age until which a patient counts as a child."""
        return self.adult_age or MAJORITY_WHEN_OFF

    def age_of(self, rule: Rule) -> int:
        """The age at which an age rule applies (0: off)."""
        match rule:  # asked for every grant an update shows (issue #23): no dict per call
            case Rule.TEEN:
                return self.teen_age
            case Rule.OWN_LOGIN:
                return self.own_login_age
            case Rule.ADULT:
                return self.adult_age
        return 0


# The policy in force in this process: the bot and the CLI install the one their settings
# give (bot/app.py, bot/cli.py); code used as a library gets the defaults.
_installed: Policy | None = None
DEFAULT = Policy()


def current() -> Policy:
    return _installed or DEFAULT


def install(policy: Policy | None) -> None:
    global _installed
    _installed = policy


@contextmanager
def using(policy: Policy) -> Iterator[Policy]:
    """This policy inside the block (tests)."""
    global _installed
    before, _installed = _installed, policy
    try:
        yield policy
    finally:
        _installed = before


# --- Birthdays -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a few per grant an update shows, the same ones again
def birthday(date_of_birth: dt.date, age: int, tz: dt.tzinfo) -> int:
    """The moment someone born on `date_of_birth` turns `age`: the midnight that starts
    that birthday in `tz` (for 29 February, 1 March in a year without one)."""
    year = date_of_birth.year + age
    try:
        day = date_of_birth.replace(year=year)
    except ValueError:
        day = dt.date(year, 3, 1)
    return int(dt.datetime.combine(day, dt.time(0), tz).timestamp())


def turns(subject: Patient, rule: Rule, policy: Policy) -> int | None:
    """When `subject` reaches the age of an age rule; None when the rule is off or their
    date of birth is unknown."""
    age = policy.age_of(rule)
    if not age or subject.date_of_birth is None:
        return None
    return birthday(subject.date_of_birth, age, policy.tz)


# --- Which rules apply -----------------------------------------------------------------------


def began(grant: Grant) -> int:
    """When the access began: its approval (older rows without one: their last decision)."""
    return grant.began_at or grant.decided_at or grant.requested_at


def as_child(grant: Grant, subject: Patient, policy: Policy) -> bool:
    """The access began while the patient was a child: the age rules apply to it. Unknown
    dates of birth count as adults (the term applies)."""
    dob = subject.date_of_birth
    return dob is not None and began(grant) < birthday(dob, policy.majority, policy.tz)


def holds(subject: Patient, policy: Policy, now: int) -> bool:
    """Whether whoever created `subject`'s account still decides for them: until the adult
    age, for an account created while they were a child (the holder of an adult someone
    looks after keeps deciding)."""
    if subject.holder_id is None:
        return False
    adult = turns(subject, Rule.ADULT, policy)
    if adult is None or subject.date_of_birth is None:
        return True
    created_as_child = subject.created_at < birthday(
        subject.date_of_birth, policy.majority, policy.tz
    )
    return not (created_as_child and now >= adult)


def clinical_approved(grant: Grant, subject: Patient, policy: Policy) -> bool:
    """The young person approved Clinical access for this person: with the approval card
    (`clinical_ok_at`), or by deciding this access themselves (approving the request, or
    setting its level) from their teen birthday on."""
    if grant.clinical_ok_at is not None:
        return True
    teen = turns(subject, Rule.TEEN, policy)
    return (
        teen is not None
        and grant.decided_by == subject.id
        and grant.decided_at is not None
        and grant.decided_at >= teen
    )


@dataclass(frozen=True)
class InForce:
    """What a grant allows right now: `level` None for nothing; `rule` is the rule that
    limits or ended it (None: as granted)."""

    level: Level | None
    rule: Rule | None = None


def in_force(grant: Grant, subject: Patient, policy: Policy, now: int) -> InForce:
    """What access `grant` gives to `subject`'s portal at `now` under `policy`."""
    if grant.status is not GrantStatus.ACTIVE:
        return InForce(None)
    child = as_child(grant, subject, policy)
    if child and grant.kept_at is None:
        adult = turns(subject, Rule.ADULT, policy)
        if adult is not None and now >= adult:
            return InForce(None, Rule.ADULT)
    if policy.term_days and grant.ends_at is not None and now >= grant.ends_at:
        return InForce(None, Rule.TERM)
    if child and grant.level is Level.CLINICAL and not clinical_approved(grant, subject, policy):
        teen = turns(subject, Rule.TEEN, policy)
        if teen is not None and now >= teen:
            return InForce(Level.ADMINISTRATIVE, Rule.TEEN)
    return InForce(grant.level)


def applied(grant: Grant, subject: Patient, policy: Policy, now: int) -> Grant | None:
    """The grant as the policy lets it stand at `now`: None when it allows nothing, its
    level lowered where a rule limits it."""
    force = in_force(grant, subject, policy, now)
    if force.level is None:
        return None
    if force.level is grant.level:
        return grant
    return grant.model_copy(update={"level": force.level})


# --- What changes, and when ------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Change:
    at: int
    rule: Rule


def changes(grant: Grant, subject: Patient, policy: Policy) -> list[Change]:
    """Every change of this grant's access the policy schedules, past ones included, in
    time order."""
    found: list[Change] = []
    if as_child(grant, subject, policy):
        teen = turns(subject, Rule.TEEN, policy)
        if (
            teen is not None
            and grant.level is Level.CLINICAL
            and not clinical_approved(grant, subject, policy)
        ):
            found.append(Change(teen, Rule.TEEN))
        adult = turns(subject, Rule.ADULT, policy)
        if adult is not None and grant.kept_at is None:
            found.append(Change(adult, Rule.ADULT))
    if policy.term_days and grant.ends_at is not None:
        found.append(Change(grant.ends_at, Rule.TERM))
    return sorted(found)


def next_change(
    grant: Grant, subject: Patient, now: int, policy: Policy | None = None
) -> Change | None:
    """The next change of this grant's access after `now` ("until 3 Mar 2027 — Mia turns
    12"); None when none is scheduled or it allows nothing already."""
    policy = policy or current()
    if in_force(grant, subject, policy, now).level is None:
        return None
    return next((c for c in changes(grant, subject, policy) if c.at > now), None)


def notice_due(change: Change, policy: Policy, now: int) -> int | None:
    """The notice to send about `change` at `now`: its number of days ahead (the nearest
    one whose time has come), or None before the first or once the change is due."""
    if now >= change.at:
        return None
    due = [days for days in policy.notice_days if now >= change.at - days * DAY]
    return min(due) if due else None


def term_end(start: int, policy: Policy) -> int | None:
    """The end date of access between adults that begins (or is renewed) at `start`."""
    return start + policy.term_days * DAY if policy.term_days else None


def needs_end_date(grant: Grant, subject: Patient, policy: Policy) -> bool:
    """Active access the term covers that has no end date yet: it existed before the term
    was set, or was kept at adulthood while the term was off."""
    return (
        grant.status is GrantStatus.ACTIVE
        and bool(policy.term_days)
        and grant.ends_at is None
        and (grant.kept_at is not None or not as_child(grant, subject, policy))
    )


def end_date_at_approval(grant: Grant, subject: Patient, policy: Policy, now: int) -> int | None:
    """The end date access gets as it begins at `now`: between adults, now + the term."""
    if as_child(grant.model_copy(update={"began_at": now}), subject, policy):
        return None
    return term_end(now, policy)


def kept_until(subject: Patient, policy: Policy) -> int | None:
    """The end date of access the young person keeps at adulthood: a term from that
    birthday (None: no term, or no adult rule)."""
    adult = turns(subject, Rule.ADULT, policy)
    return term_end(adult, policy) if adult is not None else None


def explain(policy: Policy) -> list[str]:
    """The policy in plain words, one line each (`python -m bot policy`)."""

    def age(n: int) -> str:
        return f"{n}" if n else "off (0)"

    notice = (
        " and ".join(f"{d} days" for d in policy.notice_days) + " before each change"
        if policy.notice_days
        else "nobody is told ahead (empty)"
    )
    term = (
        f"access between adults ends {policy.term_days} days (about "
        f"{round(policy.term_days / 30.44)} months) after its approval (access that existed "
        "before the term was set: after the day the bot first saw it); only the patient "
        "renews it, or the practice when they have no login."
        if policy.term_days
        else "off (0): access between adults has no end date."
    )
    return [
        f"PORTAL_TEEN_AGE={policy.teen_age}: teen age {age(policy.teen_age)}. From this "
        "birthday, everyone with access to a young person has Administrative access "
        "(appointments and invoices); Clinical access comes back for a person only when "
        "the young person, with their own login, approves it.",
        f"PORTAL_OWN_LOGIN_AGE={policy.own_login_age}: own login at "
        f"{age(policy.own_login_age)}. From this birthday a young person without a login is "
        "offered one: a practitioner is asked to send the invite, and the holder is told. "
        "Once they have a login, each person's access continues only if they approve it.",
        f"PORTAL_ADULT_AGE={policy.adult_age}: adult age {age(policy.adult_age)}. On this "
        "birthday access that began in childhood ends unless the young person keeps it, "
        "and the holder no longer decides for them; without a login, a practitioner is "
        "asked to invite them.",
        f"PORTAL_PROXY_TERM_DAYS={policy.term_days}: {term}",
        f"PORTAL_NOTICE_DAYS={','.join(map(str, policy.notice_days))}: both sides are told "
        f"{notice}, with what will change and what they can do.",
        f"Birthdays start at midnight in {policy.tz}; the age rules apply to access that "
        f"began before {policy.majority}, the term to all other access.",
    ]
