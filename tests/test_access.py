"""The access rules, against a real database: who may see, do and decide what."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot import access, invitations
from bot.access import AccessRequest, Act, Area, DecisionOutcome
from storage import Database, audit, grants, logins, patients
from storage.models import Patient
from storage.vocabulary import Level, Relationship, Role


async def _patient(
    db: Database, name: str, email: str | None = None, login: int | None = None
) -> Patient:
    async with db.transaction() as conn:
        p = await patients.create(conn, name, dt.date(1980, 1, 1), email)
        if login is not None:
            await logins.create(conn, login, p.id, "en")
    return p


def _req(level: Level = Level.CLINICAL, role: Role = Role.EDIT) -> AccessRequest:
    return AccessRequest("Someone", Relationship.PARTNER, None, level, role)


async def _can(db: Database, actor: int, subject: int, area: Area, act: Act = Act.VIEW) -> bool:
    async with db.read() as conn:
        return (await access.permission(conn, actor, subject, area, act)).allowed


async def test_a_patient_sees_and_does_everything_in_their_own_portal(db: Database) -> None:
    ann = await _patient(db, "Ann", login=1)
    for area in access.Area:
        assert await _can(db, ann.id, ann.id, area, Act.EDIT)


async def test_strangers_see_nothing(db: Database) -> None:
    ann = await _patient(db, "Ann", login=1)
    bob = await _patient(db, "Bob", login=2)
    for area in access.Area:
        assert not await _can(db, bob.id, ann.id, area)


@pytest.mark.parametrize(
    ("level", "role", "area", "act", "allowed"),
    [
        (Level.CLINICAL, Role.VIEW, Area.RECORDS, Act.VIEW, True),
        (Level.CLINICAL, Role.VIEW, Area.APPOINTMENTS, Act.EDIT, False),
        (Level.CLINICAL, Role.EDIT, Area.APPOINTMENTS, Act.EDIT, True),
        (Level.ADMINISTRATIVE, Role.EDIT, Area.RECORDS, Act.VIEW, False),
        (Level.ADMINISTRATIVE, Role.EDIT, Area.INVOICES, Act.VIEW, True),
        (Level.ADMINISTRATIVE, Role.VIEW, Area.APPOINTMENTS, Act.VIEW, True),
        (Level.ADMINISTRATIVE, Role.VIEW, Area.APPOINTMENTS, Act.EDIT, False),
    ],
)
async def test_level_and_role_decide(
    db: Database, level: Level, role: Role, area: Area, act: Act, allowed: bool
) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", login=2)
    sent = await access.request_by_email(db, bob.id, "ANN@example.com", _req(level, role), 14)
    assert sent.subject == ann and sent.decider_id == ann.id and sent.grant is not None
    assert not await _can(db, bob.id, ann.id, area, act) or not allowed  # pending grants nothing
    result = await access.decide(db, sent.grant.id, ann.id, approve=True)
    assert result.outcome is DecisionOutcome.DECIDED
    assert await _can(db, bob.id, ann.id, area, act) is allowed
    # Access is one-way: Ann did not gain access to Bob.
    assert not await _can(db, ann.id, bob.id, Area.APPOINTMENTS)


async def test_only_the_subject_decides_and_an_accessor_cannot_pass_access_on(db: Database) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", login=2)
    cat = await _patient(db, "Cat", login=3)
    first = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    assert first.grant
    await access.decide(db, first.grant.id, ann.id, approve=True)
    second = await access.request_by_email(db, cat.id, "ann@example.com", _req(), 14)
    assert second.grant
    # Bob accesses Ann (Clinical, Edit) but may not let Cat in; nor may Cat herself.
    for intruder in (bob.id, cat.id):
        refused = await access.decide(db, second.grant.id, intruder, approve=True)
        assert refused.outcome is DecisionOutcome.NOT_YOURS
    assert not await _can(db, cat.id, ann.id, Area.APPOINTMENTS)
    async with db.read() as conn:
        refusals = await audit.by_action(conn, "grant.decide")
    assert [(e.actor_patient_id, e.outcome) for e in refusals] == [
        (bob.id, "refused"),
        (cat.id, "refused"),
    ]


async def test_a_request_is_decided_exactly_once(db: Database) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", login=2)
    sent = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    assert sent.grant
    first = await access.decide(db, sent.grant.id, ann.id, approve=False)
    again = await access.decide(db, sent.grant.id, ann.id, approve=True)
    assert first.outcome is DecisionOutcome.DECIDED
    assert (
        again.outcome is DecisionOutcome.ALREADY and again.grant and again.grant.status == "denied"
    )
    assert not await _can(db, bob.id, ann.id, Area.APPOINTMENTS)
    async with db.read() as conn:
        decisions = await audit.by_action(conn, "grant.denied")
        assert len(decisions) == 1 and not await audit.by_action(conn, "grant.approved")


async def test_approvers_may_lower_but_never_raise(db: Database) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", login=2)
    sent = await access.request_by_email(
        db, bob.id, "ann@example.com", _req(Level.ADMINISTRATIVE, Role.EDIT), 14
    )
    assert sent.grant
    raised = await access.decide(db, sent.grant.id, ann.id, True, Level.CLINICAL, Role.EDIT)
    assert raised.outcome is DecisionOutcome.INVALID
    lowered = await access.decide(db, sent.grant.id, ann.id, True, Level.ADMINISTRATIVE, Role.VIEW)
    assert lowered.outcome is DecisionOutcome.DECIDED
    assert await _can(db, bob.id, ann.id, Area.APPOINTMENTS)
    assert not await _can(db, bob.id, ann.id, Area.APPOINTMENTS, Act.EDIT)


async def test_expired_requests_cannot_be_approved(db: Database) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", login=2)
    sent = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    assert sent.grant
    async with db.transaction() as conn:
        await conn.execute("UPDATE grants SET expires_at = 1 WHERE id = ?", (sent.grant.id,))
    result = await access.decide(db, sent.grant.id, ann.id, approve=True)
    assert result.outcome is DecisionOutcome.EXPIRED
    assert not await _can(db, bob.id, ann.id, Area.APPOINTMENTS)
    # Once expired, asking again is allowed.
    again = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    assert again.outcome is access.RequestOutcome.SENT


async def test_duplicates_and_self_requests(db: Database) -> None:
    await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", "bob@example.com", login=2)
    assert (
        await access.request_by_email(db, bob.id, "Bob@Example.com", _req(), 14)
    ).outcome == "self"
    assert (
        await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    ).outcome == "sent"
    assert (
        await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    ).outcome == "duplicate"
    # The same answers for an email nobody has: nothing tells the two apart.
    assert (
        await access.request_by_email(db, bob.id, "x@example.com", _req(), 14)
    ).outcome == "sent"
    assert (
        await access.request_by_email(db, bob.id, "X@example.com", _req(), 14)
    ).outcome == "duplicate"


async def test_a_request_to_an_unknown_email_waits_for_that_patient(db: Database) -> None:
    bob = await _patient(db, "Bob", login=2)
    sent = await access.request_by_email(db, bob.id, "new@example.com", _req(), 14)
    assert sent.subject is None and sent.decider_id is None and sent.grant
    created = await invitations.create_invite(
        db, invitations.InviteRequest("New Person", dt.date(1990, 1, 1), "NEW@example.com"), 14
    )
    async with db.read() as conn:
        grant = await grants.get(conn, sent.grant.id)
    assert (
        grant is not None and grant.subject_id == created.patient.id and grant.status == "pending"
    )
    # Until the new patient signs in, nobody may decide.
    refused = await access.decide(db, sent.grant.id, bob.id, approve=True)
    assert refused.outcome is DecisionOutcome.NOT_YOURS


async def test_the_holder_decides_for_a_dependent_until_they_have_a_login(db: Database) -> None:
    mum = await _patient(db, "Mum", login=1)
    dad = await _patient(db, "Dad", login=2)
    child, grant = await access.create_dependent(
        db, mum.id, "Mia", dt.date(2018, 5, 1), _req(Level.CLINICAL, Role.EDIT)
    )
    assert grant.status == "active" and grant.decided_by == mum.id
    assert await _can(db, mum.id, child.id, Area.RECORDS)
    async with db.read() as conn:
        assert await access.decider_for(conn, child.id) == mum.id
        assert not await access.may_decide(conn, dad.id, child.id)
        events = [e.action for e in await audit.for_subject(conn, child.id)]
    assert sorted(events) == ["grant.approved", "grant.requested", "patient.dependent_created"]
    async with db.transaction() as conn:
        await logins.create(conn, 99, child.id, "en")
        assert await access.decider_for(conn, child.id) == child.id
        assert not await access.may_decide(conn, mum.id, child.id)


async def test_confirming_the_same_draft_twice_creates_one_dependent(db: Database) -> None:
    mum = await _patient(db, "Mum", login=1)
    first = await access.create_dependent(
        db, mum.id, "Mia", dt.date(2018, 5, 1), _req(), idempotency_key="k1"
    )
    again = await access.create_dependent(
        db, mum.id, "Mia", dt.date(2018, 5, 1), _req(), idempotency_key="k1"
    )
    other = await access.create_dependent(
        db, mum.id, "Mia", dt.date(2018, 5, 1), _req(), idempotency_key="k2"
    )
    assert first == again and other[0].id != first[0].id
    async with db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM patients WHERE full_name = 'Mia'")
        assert (await cur.fetchone())[0] == 2


async def test_a_forged_appointment_action_for_a_patient_who_does_not_exist_is_refused(
    db: Database,
) -> None:
    ann = await _patient(db, "Ann", login=1)
    outcome = await access.act_on_appointment(db, ann.id, 999_999, 1, "cancel")
    assert outcome is access.ActOutcome.REFUSED
    async with db.read() as conn:
        (event,) = await audit.by_action(conn, "appointment.cancelled")
    assert event.outcome == "refused" and event.subject_patient_id is None


async def test_grants_ended_before_the_end_reason_get_it_from_the_audit_log(
    db: Database, db_path: Path
) -> None:
    ann = await _patient(db, "Ann", "ann@example.com", login=1)
    bob = await _patient(db, "Bob", "bob@example.com", login=2)
    cat = await _patient(db, "Cat", "cat@example.com", login=3)
    asked = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    assert asked.grant is not None
    await access.withdraw(db, bob.id, asked.grant.id)
    revoked = await access.request_by_email(db, bob.id, "ann@example.com", _req(), 14)
    left = await access.request_by_email(db, cat.id, "ann@example.com", _req(), 14)
    assert revoked.grant is not None and left.grant is not None
    for grant in (revoked.grant, left.grant):
        await access.decide(db, grant.id, ann.id, approve=True)
    await access.revoke(db, ann.id, revoked.grant.id)
    await access.leave(db, cat.id, left.grant.id)
    # As the database was before migration 0011.
    async with db.transaction() as conn:
        await conn.execute("ALTER TABLE grants DROP COLUMN end_reason")
        await conn.execute("DELETE FROM schema_version WHERE version = 11")
    await db.close()
    again = Database(db_path)
    try:
        assert await again.migrate() == [11]
        async with again.read() as conn:
            reasons = {
                g: (await grants.get(conn, g)).end_reason  # type: ignore[union-attr]
                for g in (asked.grant.id, revoked.grant.id, left.grant.id)
            }
    finally:
        await again.close()
    assert reasons == {
        asked.grant.id: "withdrawn",
        revoked.grant.id: "revoked",
        left.grant.id: "left",
    }
