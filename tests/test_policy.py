"""bot/policy.py: every rule at its boundary (the minute before and after), 29 February
birthdays, and 0 turning a rule off; the settings that configure it."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from bot import policy
from bot.policy import Change, InForce, Policy, Rule
from bot.settings import SettingsError, load_settings
from storage.models import Grant, Patient
from storage.vocabulary import GrantStatus, Level, Relationship, Role
from tests.test_cli import run_cli

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
P = Policy(tz=SYDNEY)
MINUTE = 60
DAY = 86400


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=SYDNEY).timestamp())


def child(born: dt.date = dt.date(2015, 6, 10), created: int | None = None) -> Patient:
    return Patient(
        id=2,
        full_name="Mia Lee",
        date_of_birth=born,
        email=None,
        created_at=created if created is not None else at(2020, 1, 1),
        holder_id=1,
    )


def grant(
    began: int = 0,
    level: Level = Level.CLINICAL,
    **decisions: int | None,
) -> Grant:
    return Grant(
        id=5,
        accessor_id=1,
        subject_id=2,
        subject_email=None,
        subject_name=None,
        relationship=Relationship.CHILD,
        relationship_other=None,
        level=level,
        role=Role.EDIT,
        status=GrantStatus.ACTIVE,
        requested_at=began or at(2020, 1, 1),
        expires_at=None,
        notified_at=None,
        began_at=began or at(2020, 1, 1),
        **{"decided_by": 1, "decided_at": began or at(2020, 1, 1), **decisions},  # type: ignore[arg-type]
    )


# --- Birthdays --------------------------------------------------------------------------------


def test_a_birthday_starts_at_midnight_in_the_practices_time_zone() -> None:
    assert policy.birthday(dt.date(2015, 6, 10), 12, SYDNEY) == at(2027, 6, 10)
    # Midnight in Sydney is the afternoon before in UTC.
    utc = dt.datetime.fromtimestamp(at(2027, 6, 10), dt.UTC)
    assert (utc.day, utc.hour) == (9, 14)


def test_born_on_29_february_one_turns_older_on_1_march_in_other_years() -> None:
    leap = dt.date(2016, 2, 29)
    assert policy.birthday(leap, 12, SYDNEY) == at(2028, 2, 29)  # 2028 has a 29 February
    assert policy.birthday(leap, 14, SYDNEY) == at(2030, 3, 1)
    assert policy.birthday(leap, 18, SYDNEY) == at(2034, 3, 1)
    mia = child(leap)
    g = grant()
    assert policy.in_force(g, mia, P, at(2030, 2, 28, 23, 59)).level is Level.ADMINISTRATIVE
    assert policy.in_force(g, mia, P, at(2034, 2, 28, 23, 59)) == InForce(
        Level.ADMINISTRATIVE, Rule.TEEN
    )
    assert policy.in_force(g, mia, P, at(2034, 3, 1)) == InForce(None, Rule.ADULT)


# --- The teen age -----------------------------------------------------------------------------


def test_clinical_access_becomes_administrative_on_the_teen_birthday_to_the_minute() -> None:
    mia, g = child(), grant()
    assert policy.in_force(g, mia, P, at(2027, 6, 9, 23, 59)) == InForce(Level.CLINICAL)
    assert policy.in_force(g, mia, P, at(2027, 6, 10)) == InForce(Level.ADMINISTRATIVE, Rule.TEEN)
    limited = policy.applied(g, mia, P, at(2027, 6, 10, 0, 1))
    assert limited is not None and limited.level is Level.ADMINISTRATIVE
    assert limited.role is Role.EDIT  # the role is not the age rule's business
    # Administrative access is untouched; Clinical approved by the young person comes back.
    admin = grant(level=Level.ADMINISTRATIVE)
    assert policy.applied(admin, mia, P, at(2027, 6, 10)) is admin
    approved = grant(clinical_ok_at=at(2029, 1, 1))
    assert policy.in_force(approved, mia, P, at(2029, 1, 1)) == InForce(Level.CLINICAL)
    # So does Clinical access the young person decided themselves from that birthday on
    # (approving the request, or setting the level); the holder's decision does not count.
    own = grant(decided_by=mia.id, decided_at=at(2027, 6, 10))
    assert policy.in_force(own, mia, P, at(2028, 1, 1)) == InForce(Level.CLINICAL)
    assert policy.changes(own, mia, P) == [Change(at(2033, 6, 10), Rule.ADULT)]
    early = grant(decided_by=mia.id, decided_at=at(2027, 6, 9, 23, 59))
    assert policy.in_force(early, mia, P, at(2028, 1, 1)).level is Level.ADMINISTRATIVE


def test_a_teen_age_of_0_turns_the_rule_off() -> None:
    off = Policy(teen_age=0, tz=SYDNEY)
    assert policy.in_force(grant(), child(), off, at(2030, 1, 1)) == InForce(Level.CLINICAL)
    assert [c.rule for c in policy.changes(grant(), child(), off)] == [Rule.ADULT]


# --- The adult age ----------------------------------------------------------------------------


def test_access_that_began_in_childhood_ends_on_the_adult_birthday_unless_kept() -> None:
    mia = child()
    admin = grant(level=Level.ADMINISTRATIVE)
    assert policy.in_force(admin, mia, P, at(2033, 6, 9, 23, 59)).level is Level.ADMINISTRATIVE
    assert policy.in_force(admin, mia, P, at(2033, 6, 10)) == InForce(None, Rule.ADULT)
    assert policy.applied(admin, mia, P, at(2033, 6, 10)) is None
    # Kept: it goes on, for a term from that birthday (and then ends like any other).
    until = policy.kept_until(mia, P)
    assert until == at(2033, 6, 10) + 548 * DAY
    kept = grant(level=Level.ADMINISTRATIVE, kept_at=at(2033, 5, 1), ends_at=until)
    assert policy.in_force(kept, mia, P, at(2033, 6, 10)) == InForce(Level.ADMINISTRATIVE)
    assert policy.in_force(kept, mia, P, until - MINUTE).level is Level.ADMINISTRATIVE
    assert policy.in_force(kept, mia, P, until) == InForce(None, Rule.TERM)


def test_an_adult_age_of_0_never_ends_childhood_access() -> None:
    off = Policy(adult_age=0, tz=SYDNEY)
    mia = child()
    assert policy.in_force(grant(), mia, off, at(2060, 1, 1)) == InForce(
        Level.ADMINISTRATIVE, Rule.TEEN
    )
    assert policy.holds(mia, off, at(2060, 1, 1))
    # Who is a child is still decided at 18: access that began at 20 is between adults.
    late = grant(began=at(2035, 7, 1))
    assert not policy.as_child(late, mia, off)


def test_the_holder_decides_until_the_adult_birthday_of_a_child_they_created() -> None:
    mia = child()
    assert policy.holds(mia, P, at(2033, 6, 9, 23, 59))
    assert not policy.holds(mia, P, at(2033, 6, 10))
    # Someone created as an adult dependent (a parent someone looks after) stays held.
    grandma = child(dt.date(1940, 1, 1), created=at(2020, 1, 1))
    assert policy.holds(grandma, P, at(2040, 1, 1))
    assert not policy.holds(mia.model_copy(update={"holder_id": None}), P, at(2020, 1, 1))


def test_access_that_began_the_minute_before_adulthood_is_a_childs() -> None:
    mia = child()
    assert policy.as_child(grant(began=at(2033, 6, 9, 23, 59)), mia, P)
    assert not policy.as_child(grant(began=at(2033, 6, 10)), mia, P)
    unknown = mia.model_copy(update={"date_of_birth": None})
    assert not policy.as_child(grant(), unknown, P)  # an unknown age: the term applies


# --- The term between adults ------------------------------------------------------------------


def test_access_between_adults_ends_at_its_end_date_to_the_minute() -> None:
    bob = child(dt.date(1984, 6, 1))
    approved = at(2026, 1, 5, 10, 30)
    ends = policy.end_date_at_approval(grant(began=approved), bob, P, approved)
    assert ends == approved + 548 * DAY
    g = grant(began=approved, ends_at=ends)
    assert policy.in_force(g, bob, P, ends - MINUTE) == InForce(Level.CLINICAL)
    assert policy.in_force(g, bob, P, ends) == InForce(None, Rule.TERM)
    assert policy.next_change(g, bob, approved, P) == Change(ends, Rule.TERM)
    assert policy.next_change(g, bob, ends, P) is None
    # A child's access gets no end date; a term of 0 means none, and old end dates lapse.
    assert policy.end_date_at_approval(grant(), child(), P, at(2020, 1, 1)) is None
    off = Policy(term_days=0, tz=SYDNEY)
    assert policy.end_date_at_approval(g, bob, off, approved) is None
    assert policy.in_force(g, bob, off, ends + DAY) == InForce(Level.CLINICAL)


def test_access_without_an_end_date_gets_one_when_the_term_covers_it() -> None:
    bob = child(dt.date(1984, 6, 1))
    assert policy.needs_end_date(grant(), bob, P)
    assert not policy.needs_end_date(grant(ends_at=at(2027, 1, 1)), bob, P)
    assert not policy.needs_end_date(grant(), child(), P)  # a child's: the age rules
    assert policy.needs_end_date(grant(kept_at=at(2033, 6, 1)), child(), P)
    assert not policy.needs_end_date(grant(), bob, Policy(term_days=0))


# --- What comes next, and when to say so ------------------------------------------------------


def test_the_next_change_is_the_next_rule_that_changes_this_access() -> None:
    mia = child()
    g = grant()
    assert policy.changes(g, mia, P) == [
        Change(at(2027, 6, 10), Rule.TEEN),
        Change(at(2033, 6, 10), Rule.ADULT),
    ]
    assert policy.next_change(g, mia, at(2027, 1, 1), P) == Change(at(2027, 6, 10), Rule.TEEN)
    assert policy.next_change(g, mia, at(2027, 6, 10), P) == Change(at(2033, 6, 10), Rule.ADULT)
    assert policy.next_change(g, mia, at(2033, 6, 10), P) is None  # ended
    # Administrative access does not change at the teen age.
    admin = grant(level=Level.ADMINISTRATIVE)
    assert policy.next_change(admin, mia, at(2020, 1, 1), P) == Change(at(2033, 6, 10), Rule.ADULT)
    with policy.using(Policy(adult_age=0, teen_age=0, tz=SYDNEY)):
        assert policy.next_change(g, mia, at(2020, 1, 1)) is None  # the installed policy


def test_notices_come_the_set_number_of_days_ahead_and_only_the_nearest_one() -> None:
    change = Change(at(2027, 6, 10), Rule.TEEN)
    assert policy.notice_due(change, P, change.at - 30 * DAY - MINUTE) is None
    assert policy.notice_due(change, P, change.at - 30 * DAY) == 30
    assert policy.notice_due(change, P, change.at - 8 * DAY) == 30
    assert policy.notice_due(change, P, change.at - 7 * DAY) == 7
    assert policy.notice_due(change, P, change.at - MINUTE) == 7
    assert policy.notice_due(change, P, change.at) is None
    assert policy.notice_due(change, Policy(notice_days=()), change.at - DAY) is None


# --- Settings ---------------------------------------------------------------------------------


def test_the_settings_make_the_policy_and_the_ages_must_rise() -> None:
    made = Policy.from_settings(
        load_settings(teen_age=0, own_login_age=13, adult_age=16, notice_days="7,30, 14")
    )
    assert (made.teen_age, made.own_login_age, made.adult_age) == (0, 13, 16)
    assert made.notice_days == (30, 14, 7) and made.term_days == 548
    assert Policy.from_settings(load_settings()) == Policy(tz=SYDNEY)
    for bad in (
        {"own_login_age": 12},
        {"adult_age": 14},
        {"teen_age": 0, "own_login_age": 18, "adult_age": 17},
        {"notice_days": "30,x"},
        {"notice_days": "0"},
        {"proxy_term_days": -1},
    ):
        with pytest.raises(SettingsError):
            load_settings(**bad)
    assert load_settings(own_login_age=0, adult_age=13).adult_age == 13


def test_python_m_bot_policy_explains_it_and_refuses_a_malformed_value(tmp_path: Path) -> None:
    shown = run_cli("policy", env={"PORTAL_PROXY_TERM_DAYS": "365", "PORTAL_TEEN_AGE": "0"})
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # wrapped for a terminal
    assert "PORTAL_TEEN_AGE=0: teen age off (0)" in text
    assert "ends 365 days (about 12 months) after its approval" in text
    assert "PORTAL_NOTICE_DAYS=30,7: both sides are told 30 days and 7 days" in text
    bad = run_cli("policy", env={"PORTAL_ADULT_AGE": "13", "PORTAL_OWN_LOGIN_AGE": "14"})
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PORTAL_ADULT_AGE is invalid"), lines
