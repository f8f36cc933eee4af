"""A practitioner's /access (issue #20: "practitioners can list who has access to a patient
and suspend one person's access, from their chat"), and the Renew / Ask to renew buttons
in a patient's /access, through the real bot. Every tap is forged too: the server checks
who taps (a practitioner now) and what (a grant active on that patient). The clock is the
injected one, so the dates of birth here mean the same whatever the real date."""

from __future__ import annotations

import datetime as dt

from telegram.ext import Application

from bot.callbacks import AskToSuspend, OpenPatientAccess, SuspendAccess
from bot.context import portal as portal_of
from storage import Database, audit, clock, grants
from storage.clock import FixedClock
from storage.models import AuditEvent
from storage.vocabulary import Action, GrantStatus
from tests.botapi import BotAPIServer
from tests.helpers import make_invite, make_practitioner, signed_in
from tests.test_safeguarding_chat import _ann_and_bob, _patient_id, at

DOCTOR = 900
PLEASE = "Sorry, only practitioners of the practice can do this."


async def _audit(db: Database, action: Action) -> list[AuditEvent]:
    async with db.read() as conn:
        return list(await audit.by_action(conn, action))


async def test_a_practitioner_finds_a_patient_lists_who_has_access_and_suspends_one(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob, doctor = server.user(700, "Ann"), server.user(701, "Bob"), server.user(DOCTOR, "Rao")
    with clock.use(FixedClock(at(2026, 3, 2, 10))):
        ann_id, bob_id = await _ann_and_bob(app, bot_db, ann, bob)
        # Another patient of the same name, never signed in.
        await make_invite(bot_db, "Ann Lee", dt.date(1950, 1, 1))
        await make_practitioner(bot_db, DOCTOR)

        (asked,) = await doctor.send("/access")
        assert asked.text == (
            "Whose access would you like to see?\n"
            "Send /access with the patient's full name or email, for example: /access Mia Lee"
        )
        (none,) = await doctor.send("/access Zed Nobody")
        assert none.text.startswith("I can't find a patient with that full name or email.")

        (which,) = await doctor.send("/access ann LEE")
        assert which.text == "More than one patient is called Ann Lee. Which one?"
        assert which.labels == ["Ann Lee, born 3 Feb 1985", "Ann Lee, born 1 Jan 1950"]
        (listed,) = await doctor.tap("Ann Lee, born 3 Feb 1985", message=which)
        assert listed.text == (
            "🔐 Who has access to Ann Lee's portal\n"
            "Born: 3 Feb 1985\n"
            "\n"
            "• Bob Lee · Clinical, View\n"
            "   Relationship: Partner (what Ann Lee is to them)\n"
            "   until 1 Sept 2027"
        )
        assert listed.labels == ["Suspend Bob Lee"]
        # By email, straight to the list.
        (by_email,) = await doctor.send("/access ann@example.com")
        assert by_email.text == listed.text

        (question,) = await doctor.tap("Suspend Bob Lee", message=listed)
        assert question.text == (
            "Suspend Bob Lee's access to Ann Lee's portal (Clinical, View)? It ends at once. "
            "Both sides are told only that it ended, not who ended it or why."
        )
        assert question.labels == ["Yes, suspend", "No"]
        (back,) = await doctor.tap("No", message=question)
        assert back.text == listed.text
        await doctor.tap("Suspend Bob Lee", message=listed)
        (done,) = await doctor.tap("Yes, suspend", message=listed)
        assert done.text == (
            "Suspended: Bob Lee's access to Ann Lee's portal. Those concerned are told only "
            "that it ended, not who ended it.\n\n"
            "🔐 Who has access to Ann Lee's portal\n"
            "Born: 3 Feb 1985\n"
            "\n"
            "Nobody has access to this portal."
        )
        assert done.buttons == []
        assert doctor.alerts[-1] == ("Done.", False)

        told_bob = await bob.wait_for("Your access to Ann Lee's portal has ended.")
        assert told_bob.text == "Your access to Ann Lee's portal has ended."
        told_ann = await ann.wait_for("Bob Lee's access to the portal of Ann Lee has ended.")
        assert told_ann.text == "Bob Lee's access to the portal of Ann Lee has ended."
        (event,) = await _audit(bot_db, Action.GRANT_SUSPENDED)
        assert (event.actor_telegram_id, event.subject_patient_id) == (DOCTOR, ann_id)
        lost, _home = await bob.send("/records", expect=2)
        assert "HbA1c" not in lost.text + _home.text
        async with bot_db.read() as conn:
            assert await grants.accessible_by(conn, bob_id) == []

        # Yes again (a second tap, or a second practitioner's): nothing more happens.
        await doctor.tap_data(SuspendAccess(ann_id, event.ref_id or 0).encode(), message=done)
        assert doctor.alerts[-1] == (
            "This has already changed; here is the current picture.",
            False,
        )
        await server.wait_idle()
        assert len(await _audit(bot_db, Action.GRANT_SUSPENDED)) == 1
        assert [m.text for m in bob.bot_messages].count(told_bob.text) == 1


async def test_a_practitioner_who_is_a_patient_gets_their_own_access_and_the_practice_list(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    with clock.use(FixedClock(at(2026, 3, 2, 10))):
        await _ann_and_bob(app, bot_db, ann, bob)
        await make_practitioner(bot_db, 701)  # Bob works at the practice too
        (own,) = await bob.send("/access")
        assert own.text.startswith("🔐 Access\n\nPatients you access\n• Ann Lee (Partner)")
        assert own.text.endswith(
            "As a practitioner: send /access with a patient's name to see who has access "
            "to their portal."
        )
        (listed,) = await bob.send("/access Ann Lee")
        assert listed.text.startswith("🔐 Who has access to Ann Lee's portal")
        # A patient who is not a practitioner: a name changes nothing, and says nothing.
        (mine,) = await ann.send("/access Bob Lee")
        assert mine.text.startswith("🔐 Access\n\nPatients you access")
        assert "As a practitioner" not in mine.text


async def test_forged_practice_buttons_are_refused_audited_and_change_nothing(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob, eve = server.user(700, "Ann"), server.user(701, "Bob"), server.user(666, "Eve")
    doctor = server.user(DOCTOR, "Rao")
    with clock.use(FixedClock(at(2026, 3, 2, 10))):
        ann_id, bob_id = await _ann_and_bob(app, bot_db, ann, bob)
        await signed_in(bot_db, eve, "Eve Vil", dt.date(1970, 1, 1))
        eve_id = await _patient_id(bot_db, 666)
        await make_practitioner(bot_db, DOCTOR)
        async with bot_db.read() as conn:
            (entry,) = await grants.accessible_by(conn, bob_id)
        g = entry.grant.id
        home = (await eve.send("/start"))[-1]
        # Not a practitioner, signed in as a patient: every practice button, right ids.
        for data in (
            OpenPatientAccess(ann_id),
            AskToSuspend(ann_id, g),
            SuspendAccess(ann_id, g),
        ):
            before = len(await _audit(bot_db, Action.GRANT_DECIDE))
            await eve.tap_data(data.encode(), message=home, expect=0)
            await server.wait_idle()
            assert eve.alerts[-1] == (PLEASE, True), data
            (refusal,) = (await _audit(bot_db, Action.GRANT_DECIDE))[before:]
            assert (refusal.outcome, refusal.detail) == ("refused", "practice")
            assert (refusal.actor_patient_id, refusal.actor_telegram_id) == (eve_id, 666)
            assert refusal.subject_patient_id == ann_id
        # Not a patient either (no login at all).
        stranger = server.user(667, "Sam")
        await stranger.send("/start")
        await stranger.tap_data(SuspendAccess(ann_id, g).encode(), expect=0)
        await server.wait_idle()
        assert stranger.alerts[-1] == (PLEASE, True)
        # A practitioner naming a grant on another patient, or ids that name nothing.
        (listed,) = await doctor.send("/access Eve Vil")
        for data in (
            AskToSuspend(eve_id, g),
            SuspendAccess(eve_id, g),
            SuspendAccess(0, g),
            SuspendAccess(ann_id, 999_999_999),
            AskToSuspend(999_999_999, 0),
            OpenPatientAccess(999_999_999),
        ):
            await doctor.tap_data(data.encode(), message=listed, expect=0)
            await server.wait_idle()
            assert doctor.alerts[-1] == ("You can't change this access.", True), data
        # Someone who was a practitioner when the list was sent, and is not any more.
        (shown,) = await doctor.send("/access Ann Lee")
        async with bot_db.transaction() as conn:
            await conn.execute("DELETE FROM practitioners WHERE telegram_user_id = ?", (DOCTOR,))
        await doctor.tap_data(SuspendAccess(ann_id, g).encode(), message=shown, expect=0)
        await server.wait_idle()
        assert doctor.alerts[-1] == (PLEASE, True)

        async with bot_db.read() as conn:
            assert (await grants.get(conn, g)) == entry.grant
            assert entry.grant.status is GrantStatus.ACTIVE
        assert await _audit(bot_db, Action.GRANT_SUSPENDED) == []
        await server.wait_idle()
        assert not any("has ended" in m.text for m in bob.bot_messages + ann.bot_messages)
        assert portal_of(app).db is bot_db


async def test_access_offers_renew_to_the_patient_and_ask_to_renew_to_the_person_with_access(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    with clock.use(FixedClock(at(2026, 3, 2, 10))) as fixed:
        await _ann_and_bob(app, bot_db, ann, bob)
        fixed.advance(days=30)
        await ann.send("/access")
        (grant,) = await ann.tap("Bob Lee (accesses you) ›")
        assert grant.labels[0] == "Renew Bob Lee's access"
        (renewed,) = await ann.tap("Renew Bob Lee's access", message=grant)
        assert renewed.text == (
            "You renewed Bob Lee's access to your portal: it now ends on 1 Oct 2027."
        )
        assert "was renewed" in (await bob.wait_for("was renewed")).text

        await bob.send("/access")
        (mine,) = await bob.tap("Ann Lee ›")
        assert "Ask Ann Lee to renew" in mine.labels
        (asked,) = await bob.tap("Ask Ann Lee to renew", message=mine)
        assert asked.text == "Ann Lee has been asked to renew your access to their portal."
        assert "asks you to renew" in (await ann.wait_for("asks you to renew")).text
