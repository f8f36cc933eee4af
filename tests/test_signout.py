"""A way out for a lost phone or a taken-over account (issue #17, item 2a): /signout by the
patient, /unlink by a practitioner and `python -m bot unlink`, end to end over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess

from telegram.ext import Application

from bot import access, invitations
from bot.access import AccessRequest, Area
from bot.callbacks import (
    ApproveRequest,
    ApproveWithChanges,
    AskToCancel,
    AskToLeave,
    AskToRevoke,
    BackToAccess,
    CancelAppointment,
    ChangeLevel,
    ConfirmAppointment,
    DenyRequest,
    GiveOwnLogin,
    KeepAppointment,
    OpenAccess,
    OpenActivity,
    OpenArea,
    OpenDependent,
    OpenGrant,
    OpenSwitch,
    RevokeAccess,
    StopAccessing,
    SwitchTo,
    TurnHomePage,
    TurnLogPage,
    TurnPage,
    TurnSwitchPage,
    WithdrawRequest,
)
from bot.settings import Settings
from storage import Database, audit, grants, logins, patients
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import make_invite, make_practitioner, signed_in, stored_user_data
from tests.test_cli import run_cli

ANN_EMAIL = "ann@example.com"
BORN = dt.date(1980, 1, 1)


async def _patient_of(db: Database, telegram_user_id: int) -> int:
    async with db.read() as conn:
        login = await logins.get(conn, telegram_user_id)
    assert login is not None
    return login.patient_id


async def _signed_in(db: Database, telegram_user_id: int) -> bool:
    async with db.read() as conn:
        return await logins.get(conn, telegram_user_id) is not None


async def _family(db: Database, ann: SimUser, bob: SimUser) -> tuple[int, int]:
    """Ann (with a daughter, and access to Bob's portal) and Bob, both signed in."""
    await signed_in(db, ann, "Ann Lee", email=ANN_EMAIL)
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_of(db, ann.id), await _patient_of(db, bob.id)
    await access.create_dependent(
        db,
        ann_id,
        "Mia Lee",
        dt.date(2018, 5, 3),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    asked = await access.request_by_email(
        db,
        ann_id,
        "bob@example.com",
        AccessRequest("Bob", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW),
        14,
    )
    assert asked.grant is not None
    await access.decide(db, asked.grant.id, bob_id, True)
    await ann.wait_for("Bob Lee approved your request")  # the outbox's, before the test goes on
    return ann_id, bob_id


async def test_a_patient_signs_out_after_confirming(server: BotAPIServer, bot_db: Database) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    ann_id, bob_id = await _family(bot_db, ann, bob)
    await ann.send("/switch")
    await ann.tap("Mia Lee")
    await ann.send("/start")
    assert "Viewing: Mia Lee" in ann.last.text, ann.last.text
    spare_link = await make_invite(bot_db, "Ann Lee", email=ANN_EMAIL)  # made, never used

    await ann.send("/signout")
    question = ann.last
    assert "new invite link from your practice" in question.text
    assert question.labels == ["Yes, sign me out", "No"]
    await ann.tap("No")
    assert "Nothing changed" in ann.last.text and await _signed_in(bot_db, 700)

    await ann.send("/signout")
    yes = next(b.callback_data for row in ann.last.buttons for b in row if b.text.startswith("Yes"))
    assert yes is not None
    await bob.send("/start")
    await bob.tap_data(yes)  # Bob forges Ann's confirmation in his own chat
    assert bob.alerts[-1] == ("This button is no longer active.", True)
    assert await _signed_in(bot_db, 700) and await _signed_in(bot_db, 701)

    await ann.tap("Yes, sign me out")
    assert "You're signed out" in ann.last.text, ann.transcript()
    assert not await _signed_in(bot_db, 700)
    await ann.send("/details")
    assert "Please sign in first" in ann.last.text
    await ann.send("/start")
    assert "To sign in, open the invite link" in ann.last.text
    await ann.tap_data(yes, message=ann.bot_messages[-3])  # the old Yes: nothing more happens
    assert ann.alerts[-1] == ("This button is no longer active.", True)

    # Only the login went: the records, the grants and the daughter stay.
    async with bot_db.read() as conn:
        assert await patients.get(conn, ann_id) is not None
        assert await grants.active(conn, ann_id, bob_id) is not None
        assert [p.full_name for p in await patients.held_by(conn, ann_id)] == ["Mia Lee"]
        events = await audit.for_subject(conn, ann_id)
    assert (events[0].action, events[0].actor_telegram_id) == ("signin.signed_out", 700)

    # A link made before signing out no longer opens the portal; a new one does.
    await ann.open_link(spare_link)
    assert "expired" in ann.last.text
    await signed_in(bot_db, ann, "Ann Lee", email=ANN_EMAIL)
    assert await _patient_of(bot_db, 700) == ann_id
    await ann.send("/start")
    assert "Viewing: your own portal" in ann.last.text  # not Mia's, chosen before
    await ann.send("/activity")
    assert "Ann Lee</b> signed out of the portal on Telegram" in ann.last.html, ann.last.html
    assert not server.errors, server.errors


SIGN_IN_FIRST = ("Please sign in first: open the invite link your practice sent you.", True)


async def test_every_button_left_from_before_signing_out_asks_to_sign_in(
    server: BotAPIServer, bot_db: Database
) -> None:
    """The buttons on a signed-out patient's older messages all say one thing: how to
    sign in (the /signout question's own Yes and No aside, stale once signed out)."""
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    ann_id, bob_id = await _family(bot_db, ann, bob)
    async with bot_db.read() as conn:
        grant = await grants.active(conn, ann_id, bob_id)
        [mia] = await patients.held_by(conn, ann_id)
    assert grant is not None
    home = (await ann.send("/start"))[-1]
    await ann.send("/signout")
    await ann.tap("Yes, sign me out")
    assert not await _signed_in(bot_db, 700)
    left = [
        OpenArea(Area.RECORDS),
        OpenSwitch(),
        OpenAccess(),
        OpenActivity(),
        TurnHomePage(1),
        TurnPage(Area.APPOINTMENTS, ann_id, 0),
        SwitchTo(bob_id),
        TurnSwitchPage(1),
        AskToCancel(ann_id, 1, 0),
        CancelAppointment(ann_id, 1, 0),
        KeepAppointment(ann_id, 1, 0),
        ConfirmAppointment(ann_id, 1, 0),
        BackToAccess(),
        OpenGrant(grant.id),
        AskToRevoke(grant.id),
        RevokeAccess(grant.id),
        ChangeLevel(grant.id, Level.ADMINISTRATIVE),
        AskToLeave(grant.id),
        StopAccessing(grant.id),
        WithdrawRequest(grant.id),
        OpenDependent(mia.id),
        GiveOwnLogin(mia.id),
        ApproveRequest(grant.id),
        DenyRequest(grant.id),
        ApproveWithChanges(grant.id),
        TurnLogPage(ann_id, 0),
    ]
    for data in left:
        await ann.tap_data(data.encode(), message=home)
        assert ann.alerts[-1] == SIGN_IN_FIRST, data
    async with bot_db.read() as conn:
        assert await grants.active(conn, ann_id, bob_id) == grant  # nothing changed
    assert not server.errors, server.errors


async def test_a_practitioner_unlinks_a_patient_in_chat(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    ann_id, _bob_id = await _family(bot_db, ann, bob)
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await ann.send("/addpatient")
    await ann.send("Leo Lee")  # a draft, half done
    assert "addpatient" in await stored_user_data(bot_db, 700)

    await doctor.send("/unlink")
    assert "email or full name" in doctor.last.text
    await doctor.send("nobody@example.com")
    assert "can't find a signed-in patient" in doctor.last.text
    await doctor.send("ann lee")
    confirm = doctor.last
    assert "Sign Ann Lee out of the portal" in confirm.text and ANN_EMAIL in confirm.text
    assert confirm.labels == ["Yes, sign them out", "No"]
    yes = confirm.buttons[0][0].callback_data
    assert yes == f"unl:y:{ann_id}:700"
    await doctor.tap("No")
    assert "Nothing changed" in doctor.last.text and await _signed_in(bot_db, 700)

    await bob.send("/start")
    await bob.tap_data(yes)  # not a practitioner: the forged Yes does nothing
    assert bob.alerts[-1] == ("This button is no longer active.", True)
    assert await _signed_in(bot_db, 700)

    await doctor.send("/unlink")
    await doctor.send(ANN_EMAIL)
    await doctor.tap("Yes, sign them out")
    assert "Ann Lee's Telegram account is signed out" in doctor.last.text
    await server.wait_idle()
    assert "signed this Telegram account out of your patient portal" in ann.last.text
    assert "new invite link" in ann.last.text
    assert not await _signed_in(bot_db, 700)
    assert "addpatient" not in await stored_user_data(bot_db, 700)  # it went with the login
    # The confirmation again, and a stale one for a login that is gone: nothing changes.
    await doctor.tap_data(yes, message=confirm)
    assert "no longer holds this portal" in confirm.text
    await ann.send("/cancel")
    await ann.send("/details")
    assert "Please sign in first" in ann.last.text
    async with bot_db.read() as conn:
        events = await audit.for_subject(conn, ann_id)
    assert (events[0].action, events[0].actor_telegram_id) == ("signin.unlinked", 500)
    await signed_in(bot_db, ann, "Ann Lee", email=ANN_EMAIL)
    await ann.send("/activity")
    assert "The practice</b> signed the Telegram account out of this portal" in ann.last.html
    # Only practitioners may ask.
    await bob.send("/unlink")
    assert "only practitioners" in bob.last.text
    assert not server.errors, server.errors


async def test_signout_and_unlink_are_in_the_menus_and_help(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/help")
    assert "/signout" in ann.last.text and "/unlink" not in ann.last.text
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/help")
    assert "/unlink" in doctor.last.text
    await doctor.send("/start")
    await server.wait_idle()
    assert "signout" in [c["command"] for c in server.commands_for(ann)]
    practitioner = [c["command"] for c in server.commands_for(doctor)]
    assert {"invite", "unlink", "signout"} <= set(practitioner)


async def test_the_cli_unlinks_by_id_or_email(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    settings: Settings,
    bot_db: Database,
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    ann_id, bob_id = await _family(bot_db, ann, bob)
    env = {
        "PORTAL_DB_PATH": str(settings.db_path),
        "PORTAL_BOT_TOKEN": server.token,
        "PORTAL_API_BASE_URL": server.base_url,
    }

    async def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_cli, "unlink", *args, env={**env, **extra})

    done = await cli("--patient", ANN_EMAIL.upper())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        f"Ann Lee (patient {ann_id}): Telegram account 700 signed out of the portal; "
        "the bot tells them in Telegram"
    ]
    # Queued with the change; the running bot's outbox sends it.
    await ann.wait_for("signed this Telegram account out of your patient portal")
    await ann.send("/details")
    assert "Please sign in first" in ann.last.text

    again = await cli("--patient", str(ann_id))
    assert again.returncode == 0
    assert again.stdout.strip() == (
        f"Ann Lee (patient {ann_id}) has no Telegram account signed in; nothing changed"
    )
    # Without a token the command still works: the bot, wherever it runs, tells them.
    untold = await cli("--patient", str(bob_id), PORTAL_BOT_TOKEN="")
    assert untold.returncode == 0, untold.stderr
    assert "the bot tells them in Telegram" in untold.stdout
    await bob.wait_for("signed this Telegram account out of your patient portal")
    async with bot_db.read() as conn:
        actions = [e.action for e in await audit.for_subject(conn, bob_id)]
    assert actions[0] == "signin.unlinked"

    unknown = await cli("--patient", "999")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no patient with id 999"
    nobody = await cli("--patient", "nobody@example.com")
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == "error: no patient with email nobody@example.com"
    malformed = await cli("--patient", "Ann Lee")
    assert malformed.returncode == 2 and len(malformed.stderr.strip().splitlines()) == 1


async def test_a_dependent_who_signs_out_is_not_held_again(db: Database) -> None:
    """Mia took over her account with an own-login link; signing her out must not hand the
    decisions back to Mum (who could otherwise make herself a link to Mia's portal), nor
    revive Mum's offer of Mia's access that lapsed when Mia signed in."""
    mum_invite = await invitations.create_invite(
        db, invitations.InviteRequest("Mum Lee", BORN, "mum@example.com"), 14
    )
    await invitations.sign_in(db, mum_invite.invite.id, 1, "en", BORN)
    await invitations.create_invite(
        db, invitations.InviteRequest("Dad Lee", BORN, "dad@example.com"), 14
    )
    mum = mum_invite.patient.id
    mia, _ = await access.create_dependent(
        db,
        mum,
        "Mia Lee",
        dt.date(2008, 1, 1),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    offer = await access.offer_by_email(
        db, mum, mia.id, "dad@example.com", Level.CLINICAL, Role.EDIT, 14
    )
    own = await invitations.create_own_login_invite(db, mum, mia.id, 14)
    assert offer is not None and own is not None
    await invitations.sign_in(db, own.invite.id, 3, "en", dt.date(2008, 1, 1))
    async with db.read() as conn:
        login = await logins.get(conn, 3)
    assert login is not None
    assert await invitations.sign_out(db, 3, mia.id, login.created_at) is not None
    async with db.read() as conn:
        assert await patients.held_by(conn, mum) == []
        lapsed = await grants.get(conn, offer.id)
    assert lapsed is not None and lapsed.status == "expired"
    assert await invitations.create_own_login_invite(db, mum, mia.id, 14) is None
    assert await access.held_dependent(db, mum, mia.id) is None
