"""The one access check applies the practice's policy at the moment of each request
(bot/access.py with bot/policy.py): no sweep needed for anyone to lose access on time."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from bot import access, invitations
from bot.access import AccessRequest, Act, Area, DecisionOutcome
from bot.invitations import InviteRequest, InviteState
from bot.policy import Policy
from storage import Database, clock, grants, logins
from storage.clock import FixedClock
from storage.vocabulary import Action, GrantStatus, Level, Relationship, Role

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
DAY = 86400
MIA_BORN = dt.date(2015, 6, 10)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


async def _signed_in(db: Database, name: str, email: str, tg: int) -> int:
    born = dt.date(1985, 2, 3)
    new = await invitations.create_invite(db, InviteRequest(name, born, email), 14)
    assert (await invitations.sign_in(db, new.invite.id, tg, "en", born)).state is InviteState.VALID
    return new.patient.id


async def _may(db: Database, actor: int, subject: int, area: Area) -> bool:
    async with db.read() as conn:
        return (await access.permission(conn, actor, subject, area, Act.VIEW)).allowed


async def test_a_parent_sees_clinical_records_until_the_minute_their_child_turns_12(
    db: Database,
) -> None:
    with clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        mia, grant = await access.create_dependent(
            db,
            mum,
            "Mia Lee",
            MIA_BORN,
            AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
        )
        assert grant.began_at == int(at(2020, 1, 1).timestamp()) and grant.ends_at is None
        async with db.transaction() as conn:  # Mum looks at Mia's portal
            await logins.set_current_subject(conn, 700, mia.id)
        fixed.set(at(2027, 6, 9, 23, 59))
        assert await _may(db, mum, mia.id, Area.RECORDS)
        view = await access.viewing(db, 700)
        assert view is not None and view.grant is not None and view.grant.level is Level.CLINICAL
        fixed.set(at(2027, 6, 10))
        assert not await _may(db, mum, mia.id, Area.RECORDS)
        assert await _may(db, mum, mia.id, Area.APPOINTMENTS)
        view = await access.viewing(db, 700)
        assert view is not None and view.subject.id == mia.id and view.grant is not None
        assert view.grant.level is Level.ADMINISTRATIVE
        records = await access.authorize(
            db, view, Area.RECORDS, Act.VIEW, action=Action.VIEW_RECORDS
        )
        assert not records.allowed
        # An older Viewing, judged again at the moment of the request, is limited too.
        fixed.set(at(2027, 6, 9, 23, 59))
        before = await access.viewing(db, 700)
        assert before is not None
        fixed.set(at(2027, 6, 10))
        late = await access.authorize(
            db, before, Area.RECORDS, Act.VIEW, action=Action.VIEW_RECORDS
        )
        assert not late.allowed
        # Mum still decides for Mia until her adult birthday, then nobody does (no login).
        async with db.read() as conn:
            assert await access.decider_for(conn, mia.id) == mum
        fixed.set(at(2033, 6, 9, 23, 59))
        assert await _may(db, mum, mia.id, Area.APPOINTMENTS)
        assert await access.held_dependent(db, mum, mia.id) is not None
        fixed.set(at(2033, 6, 10))
        assert not await _may(db, mum, mia.id, Area.APPOINTMENTS)
        async with db.read() as conn:
            assert await access.decider_for(conn, mia.id) is None
        assert await access.held_dependent(db, mum, mia.id) is None
        assert (await access.overview(db, mum)).held == []
        # Her view falls back home, saying the access has expired (not "was revoked").
        view = await access.viewing(db, 700)
        assert view is not None and view.own and view.lost is GrantStatus.EXPIRED
        assert await access.switch_to(db, 700, mia.id) is None
        assert await access.view_of(db, 700, mia.id, action=Action.VIEW_DETAILS) is None


async def test_access_between_adults_ends_at_its_end_date(db: Database) -> None:
    approved = at(2026, 3, 2, 10, 0)
    with clock.use(FixedClock(approved)) as fixed:
        ann = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        bob = await _signed_in(db, "Bob Lee", "bob@example.com", 701)
        ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
        sent = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        assert sent.grant is not None
        decided = await access.decide(db, sent.grant.id, ann, approve=True)
        assert decided.outcome is DecisionOutcome.DECIDED and decided.grant is not None
        ends = int(approved.timestamp()) + 548 * DAY
        assert decided.grant.ends_at == ends
        assert decided.grant.began_at == int(approved.timestamp())
        fixed.set(ends - 60)
        assert await _may(db, bob, ann, Area.RECORDS)
        assert await access.switch_to(db, 701, ann) is not None
        fixed.set(ends)
        assert not await _may(db, bob, ann, Area.DETAILS)
        view = await access.viewing(db, 701)
        assert view is not None and view.own and view.lost is GrantStatus.EXPIRED
        async with db.read() as conn:  # ended by the check, before any sweep
            assert (await grants.get(conn, sent.grant.id)).status is GrantStatus.ACTIVE  # type: ignore[union-attr]


async def test_an_adult_dependent_gets_a_term_and_their_carer_keeps_deciding(
    db: Database,
) -> None:
    """Someone who looks after an adult (who has no phone) is covered by the term, not by
    the age rules, and stays their holder."""
    with clock.use(FixedClock(at(2026, 3, 2))) as fixed:
        carer = await _signed_in(db, "Cat Ng", "cat@example.com", 700)
        grandpa, grant = await access.create_dependent(
            db,
            carer,
            "Len Ng",
            dt.date(1940, 1, 1),
            AccessRequest("Len Ng", Relationship.PARENT, None, Level.CLINICAL, Role.EDIT),
        )
        assert grant.ends_at == int(at(2026, 3, 2).timestamp()) + 548 * DAY
        fixed.set(at(2027, 3, 2))
        async with db.read() as conn:
            assert await access.decider_for(conn, grandpa.id) == carer


async def test_with_the_rules_off_nothing_ends(db: Database) -> None:
    from bot import policy

    off = Policy(teen_age=0, own_login_age=0, adult_age=0, term_days=0, tz=SYDNEY)
    with policy.using(off), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        mia, _grant = await access.create_dependent(
            db,
            mum,
            "Mia Lee",
            MIA_BORN,
            AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
        )
        fixed.set(at(2040, 1, 1))
        assert await _may(db, mum, mia.id, Area.RECORDS)
        async with db.read() as conn:
            assert await access.decider_for(conn, mia.id) == mum
