"""The practice's policy in the chat (issue #20, part 2), through the real bot: the buttons
on its notices and cards (renew, ask to renew, keep, approve or deny as a young person),
"Stop all access" in /access, and the end date in the "Viewing" header. The clock is the
injected one; the sweep runs as the bot's job runs it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from telegram.ext import Application

from bot import access, invitations, policy
from bot.access import AccessRequest
from bot.context import portal as portal_of
from bot.sweep import sweep
from storage import Database, clock, grants
from storage import portal as portal_data
from storage.clock import FixedClock
from storage.models import Patient
from storage.vocabulary import GrantStatus, Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import BOT, signed_in

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
DAY = 86400
MIA_BORN = dt.date(2015, 6, 10)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        cur = await conn.execute(
            "SELECT patient_id FROM logins WHERE telegram_user_id = ?", (telegram_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _swept(app: Application, db: Database) -> None:  # type: ignore[type-arg]
    await sweep(db, policy.current())
    portal_of(app).sender.wake()


async def _ann_and_bob(
    app: Application,  # type: ignore[type-arg]
    db: Database,
    ann: SimUser,
    bob: SimUser,
) -> tuple[int, int]:
    """Bob has Clinical access to Ann's portal (approved on her card), with a result to see."""
    await signed_in(db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_id(db, ann.id), await _patient_id(db, bob.id)
    ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
    sent = await access.request_by_email(db, bob_id, "ann@example.com", ask, 14)
    assert sent.grant is not None
    portal_of(app).sender.wake()
    card = await ann.wait_for("asks to access your patient portal")
    await ann.tap("✅ Approve", message=card)
    # Bob hears of it first: otherwise that notice could pass for the answer to /switch.
    await bob.wait_for("approved your request")
    async with db.transaction() as conn:
        await portal_data.add_record(conn, ann_id, dt.date(2026, 1, 5), "result", "HbA1c", "5.4")
    await bob.send("/switch")
    await bob.tap("Ann Lee (Partner) · Clinical")
    return ann_id, bob_id


async def test_the_patient_renews_from_the_notice_and_access_continues_past_the_old_end(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    approved = at(2026, 3, 2, 10)
    with clock.use(FixedClock(approved)) as fixed:
        await _ann_and_bob(app, bot_db, ann, bob)
        ends = int(approved.timestamp()) + 548 * DAY
        # The Viewing header says until when.
        header = (await bob.send("/records"))[-1].text.splitlines()[0]
        assert header == "👥 Viewing: Ann Lee (Partner) · Clinical, View · until 1 Sept 2027"

        fixed.set(dt.datetime.fromtimestamp(ends - 7 * DAY, SYDNEY))
        await _swept(app, bot_db)
        to_bob = await bob.wait_for("Only Ann Lee can renew it")
        notice = await ann.wait_for("To keep it, renew it in /access")
        assert notice.labels == ["Renew Bob Lee's access"]
        assert to_bob.labels == ["Ask Ann Lee to renew"]

        # Bob asks; Ann gets a notice of her own with Renew on it.
        (asked,) = await bob.tap("Ask Ann Lee to renew", message=to_bob)
        assert asked.text == "Ann Lee has been asked to renew your access to their portal."
        assert asked.buttons == []
        request = await ann.wait_for("asks you to renew")
        assert request.text == (
            "Bob Lee asks you to renew their access to your portal, which ends on 1 Sept "
            "2027. To let it end, do nothing."
        )
        (renewed,) = await ann.tap("Renew Bob Lee's access", message=request)
        new_end = ends - 7 * DAY + 548 * DAY
        day = dt.datetime.fromtimestamp(new_end, SYDNEY).strftime("%-d %b %Y")
        assert renewed.text == f"You renewed Bob Lee's access to your portal: it now ends on {day}."
        assert renewed.buttons == []
        assert "was renewed" in (await bob.wait_for("was renewed")).text

        # The other notice's button gives the same term (from the same moment).
        (again,) = await ann.tap("Renew Bob Lee's access", message=notice)
        assert again.text == renewed.text

        # Past the old end date, Bob still sees her results.
        fixed.set(dt.datetime.fromtimestamp(ends + 60, SYDNEY))
        assert "HbA1c" in (await bob.send("/records"))[-1].text
        await _swept(app, bot_db)
        await server.wait_idle()
        assert not any("reached its end date" in m.text for m in bob.bot_messages)


async def test_a_stranger_cannot_renew_or_ask_with_a_forged_button(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    from bot.callbacks import AskPatientToRenew, RenewAccess

    ann, bob, eve = server.user(700, "Ann"), server.user(701, "Bob"), server.user(702, "Eve")
    with clock.use(FixedClock(at(2026, 3, 2, 10))):
        await _ann_and_bob(app, bot_db, ann, bob)
        await signed_in(bot_db, eve, "Eve Stone", dt.date(1990, 1, 1))
        bob_id = await _patient_id(bot_db, 701)
        async with bot_db.read() as conn:
            (entry,) = await grants.accessible_by(conn, bob_id)
        for data in (RenewAccess(entry.grant.id), AskPatientToRenew(entry.grant.id)):
            await eve.tap_data(data.encode(), expect=0)
            await server.wait_idle()
            assert eve.alerts[-1] == ("You can't change this access.", True)
        # Bob cannot renew his own access either: only Ann can.
        await bob.tap_data(RenewAccess(entry.grant.id).encode(), expect=0)
        await server.wait_idle()
        assert bob.alerts[-1] == ("You can't change this access.", True)
        async with bot_db.read() as conn:
            assert (await grants.get(conn, entry.grant.id)) == entry.grant


async def _mum_and_mia(
    db: Database, mum: SimUser, mia_user: SimUser, level: Level
) -> tuple[int, Patient]:
    """Mum holds Mia's account (with `level`); Mia signs in with her own login."""
    await signed_in(db, mum, "Ann Lee")
    mum_id = await _patient_id(db, mum.id)
    mia, _grant = await access.create_dependent(
        db,
        mum_id,
        "Mia Lee",
        MIA_BORN,
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, level, Role.EDIT),
    )
    new = await invitations.create_own_login_invite(db, mum_id, mia.id, 14)
    assert new is not None
    await mia_user.open_link(f"https://t.me/{BOT}?start={new.token}")
    await mia_user.send("10/6/2015")
    assert "You're now signed in" in mia_user.last.text, mia_user.transcript()
    return mum_id, mia


async def test_a_young_person_denies_on_the_review_card_and_the_access_ends(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    mum, mia_user = server.user(700, "Ann"), server.user(710, "Mia")
    with clock.use(FixedClock(at(2029, 7, 1, 9))):  # Mia is 14
        await _mum_and_mia(bot_db, mum, mia_user, Level.ADMINISTRATIVE)
        await mum.send("/switch")
        await mum.tap("Mia Lee (Daughter)")
        await _swept(app, bot_db)
        card = await mia_user.wait_for("Now you decide whether it continues")
        assert card.labels == ["✅ Approve", "❌ Deny"]
        (denied,) = await mia_user.tap("❌ Deny", message=card)
        assert denied.text == "You denied: Ann Lee's access to your portal has ended."
        assert denied.buttons == []
        assert "revoked" in (await mum.wait_for("Mia Lee")).text
        lost, _home = await mum.send("/appointments", expect=2)
        assert lost.text.startswith("Your access to Mia Lee's portal has ended")


async def test_a_young_person_approves_on_the_review_card_and_clinical_comes_back(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    mum, mia_user = server.user(700, "Ann"), server.user(710, "Mia")
    with clock.use(FixedClock(at(2029, 7, 1, 9))):  # Mia is 14: Mum's Clinical is limited
        _mum_id, mia = await _mum_and_mia(bot_db, mum, mia_user, Level.CLINICAL)
        async with bot_db.transaction() as conn:
            await portal_data.add_record(
                conn, mia.id, dt.date(2028, 3, 1), "immunisation", "HPV vaccine", ""
            )
        await mum.send("/switch")
        await mum.tap("Mia Lee (Daughter)")
        assert "HPV vaccine" not in (await mum.send("/records"))[-1].text
        await _swept(app, bot_db)
        card = await mia_user.wait_for("no longer sees your clinical records")
        (approved,) = await mia_user.tap("✅ Approve", message=card)
        assert approved.text == "You approved: Ann Lee can see your clinical records again."
        continues = await mia_user.wait_for("Now you decide whether it continues")
        (kept,) = await mia_user.tap("✅ Approve", message=continues)
        assert kept.text == "You approved: Ann Lee's access to your portal continues."
        assert "HPV vaccine" in (await mum.send("/records"))[-1].text


async def test_the_young_person_keeps_access_on_the_notice_before_18_and_it_continues(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    mum, mia_user = server.user(700, "Ann"), server.user(710, "Mia")
    with clock.use(FixedClock(at(2033, 5, 11, 9))) as fixed:  # 30 days before Mia turns 18
        await _mum_and_mia(bot_db, mum, mia_user, Level.ADMINISTRATIVE)
        await mum.send("/switch")
        await mum.tap("Mia Lee (Daughter)")
        await _swept(app, bot_db)
        notice = await mia_user.wait_for("On 10 Jun 2033 you turn 18")
        assert notice.labels == ["Keep Ann Lee's access"]
        await mia_user.tap("Keep Ann Lee's access", message=notice)
        assert notice.text == (
            "You kept Ann Lee's access to your portal after you turn 18. It now ends on "
            "10 Dec 2034."
        )
        assert "chose to keep your access" in (await mum.wait_for("chose to keep")).text

        fixed.set(at(2033, 6, 10, 0, 1))  # her 18th birthday
        shown = (await mum.send("/appointments"))[-1].text
        assert shown.startswith("👥 Viewing: Mia Lee (Daughter)"), shown
        await _swept(app, bot_db)
        await server.wait_idle()
        assert not any("turned 18: your access" in m.text for m in mum.bot_messages)


async def test_stop_all_access_ends_everyones_access_and_edits_open_cards(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob, carl = server.user(700, "Ann"), server.user(701, "Bob"), server.user(702, "Carl")
    with clock.use(FixedClock(at(2026, 3, 2, 10))):
        await _ann_and_bob(app, bot_db, ann, bob)
        await signed_in(bot_db, carl, "Carl Day", dt.date(1970, 1, 1))
        ask = AccessRequest("Ann", Relationship.CARER, None, Level.ADMINISTRATIVE, Role.VIEW)
        carl_id = await _patient_id(bot_db, 702)
        pending = await access.request_by_email(bot_db, carl_id, "ann@example.com", ask, 14)
        assert pending.grant is not None
        portal_of(app).sender.wake()
        card = await ann.wait_for("Carl Day asks to access your patient portal")

        await ann.send("/access")
        (question,) = await ann.tap("⛔ Stop all access to my portal")
        assert question.text.startswith("Stop all access to your portal?")
        assert "These people lose access at once: Bob Lee." in question.text
        assert question.labels == ["Yes", "No"]
        await ann.tap("Yes", message=question, expect=2)  # the screen, and the card edited
        assert question.text.startswith("All access stopped: 1 ended, 1 requests declined.")

        told = await bob.wait_for("Your access to Ann Lee's portal has ended.")
        assert told.text == "Your access to Ann Lee's portal has ended."
        await server.wait_idle()
        assert card.buttons == [] and card.edited, ann.transcript()
        lost, _home = await bob.send("/records", expect=2)
        assert "HbA1c" not in lost.text + _home.text
        async with bot_db.read() as conn:
            assert (await grants.get(conn, pending.grant.id)).status is GrantStatus.DENIED  # type: ignore[union-attr]


async def test_lists_show_until_when_and_drop_access_past_its_end_before_any_sweep(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    approved = at(2026, 3, 2, 10)
    with clock.use(FixedClock(approved)) as fixed:
        await _ann_and_bob(app, bot_db, ann, bob)
        await ann.send("/access")
        assert "• Bob Lee · Clinical, View\n   until 1 Sept 2027" in ann.last.text
        await bob.send("/access")
        assert "Ann Lee (Partner) · Clinical, View — since 2 Mar 2026\n   until 1 Sept 2027" in (
            bob.last.text
        )
        fixed.set(dt.datetime.fromtimestamp(approved.timestamp() + 548 * DAY + 60, SYDNEY))
        # No sweep yet: the grant is still stored as active, but no list shows it.
        await bob.send("/start")
        assert not any("Ann Lee" in label for label in bob.last.labels), bob.last.labels
        await bob.send("/access")
        assert "Ann Lee" not in bob.last.text
        await ann.send("/access")
        assert "Bob Lee" not in ann.last.text


async def test_a_practitioner_renews_access_to_a_patient_without_a_login(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
) -> None:
    from tests.helpers import make_practitioner

    carer, doctor = server.user(700, "Ann"), server.user(900, "Dr Rao")
    approved = at(2026, 3, 2, 10)
    with clock.use(FixedClock(approved)) as fixed:
        await make_practitioner(bot_db, 900)
        await doctor.send("/start")
        await signed_in(bot_db, carer, "Ann Lee")
        ann_id = await _patient_id(bot_db, 700)
        # Ann looks after her father, an adult without a login of his own.
        dad, _grant = await access.create_dependent(
            bot_db,
            ann_id,
            "Tom Lee",
            dt.date(1940, 1, 1),
            AccessRequest("Tom Lee", Relationship.PARENT, None, Level.CLINICAL, Role.EDIT),
        )
        async with bot_db.read() as conn:
            (entry,) = await grants.accessible_by(conn, ann_id)
        assert entry.grant.ends_at is not None
        fixed.set(dt.datetime.fromtimestamp(entry.grant.ends_at - 7 * DAY, SYDNEY))
        await _swept(app, bot_db)
        card = await doctor.wait_for("the practice decides whether to renew it")
        assert card.labels == ["Renew", "End access"]
        # Ann cannot press the practice's button.
        await carer.tap_data(card.buttons[0][0].callback_data or "", expect=0)
        await server.wait_idle()
        assert carer.alerts[-1] == ("Sorry, only practitioners of the practice can do this.", True)
        await doctor.tap("Renew", message=card)
        assert card.text.startswith("Renewed: Ann Lee's access to the portal of Tom Lee now ends")
        assert card.buttons == []
        assert "was renewed" in (await carer.wait_for("was renewed")).text
        async with bot_db.read() as conn:
            renewed = await grants.get(conn, entry.grant.id)
        assert renewed is not None and renewed.ends_at != entry.grant.ends_at
        assert dad.id == renewed.subject_id
