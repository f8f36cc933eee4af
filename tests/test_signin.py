"""Practitioner invites and signing in from the deep link, end to end over real HTTP."""

from __future__ import annotations

import datetime as dt

from telegram.ext import Application

from bot.tokens import hash_token
from storage import Database, audit, invites, logins
from tests.botapi import BotAPIServer
from tests.helpers import BOT, PRACTICE, make_invite, make_practitioner, signed_in


async def test_practitioner_invites_and_the_patient_signs_in(
    server: BotAPIServer, bot_db: Database
) -> None:
    await make_practitioner(bot_db, 500, "Dr Rao")
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    assert "full name" in doctor.last.text
    await doctor.send("  Ann   Lee ")
    assert "Ann Lee's date of birth" in doctor.last.text and "4/3/2010" in doctor.last.text
    await doctor.send("1985-02-30")
    assert "couldn't read that" in doctor.last.text
    await doctor.send("3/2/1985")
    assert "email" in doctor.last.text and "Skip" in doctor.last.labels
    replies = await doctor.tap("Skip", expect=2)
    link_msg, qr = replies[-2], replies[-1]
    assert "Invite for Ann Lee is ready" in link_msg.text
    link = next(word for word in link_msg.text.split() if word.startswith("https://t.me/"))
    assert link.startswith(f"https://t.me/{BOT}?start=")
    assert link_msg.buttons[0][0].url and link_msg.buttons[0][0].url.startswith(
        "https://t.me/share/url?url="
    )
    assert qr.kind == "photo" and qr.photo and qr.photo.startswith(b"\x89PNG")
    assert "scan this code" in (qr.caption or "")

    ann = server.user(700, "Ann")
    await ann.open_link(link)
    assert "date of birth" in ann.last.text
    await ann.send("3/2/1985")
    welcome = ann.last.text
    assert "Welcome, Ann!" in welcome and PRACTICE in welcome
    assert "/help" in welcome
    async with bot_db.read() as conn:
        login = await logins.get(conn, 700)
        assert login is not None
        assert [e.action for e in await audit.for_subject(conn, login.patient_id)] == [
            "signin.ok",
            "invite.created",
        ]
    # Opening the same link again just says so.
    await ann.open_link(link)
    assert "already signed in" in ann.last.text
    assert not server.errors, server.errors


async def test_invite_steps_go_back_skip_and_cancel(server: BotAPIServer, bot_db: Database) -> None:
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    await doctor.send("A" * 101)
    assert "up to 100 characters" in doctor.last.text
    await doctor.send("Bo Tran")
    await doctor.tap("◀ Back")
    assert "full name" in doctor.last.text
    await doctor.send("Bo Tran")
    await doctor.send("30/12/1990")
    await doctor.send("not an email")
    assert "doesn't look like an email" in doctor.last.text
    await doctor.tap("◀ Back")
    assert "date of birth" in doctor.last.text
    await doctor.send("/help")
    assert "middle of an invite" in doctor.last.text
    await doctor.send("/cancel")
    assert "Nothing was created" in doctor.last.text
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM invites")
        assert (await cur.fetchone())[0] == 0
    # The Cancel button works too, and an email ends the flow with a link.
    await doctor.send("/invite")
    await doctor.tap("Cancel")
    assert "Nothing was created" in doctor.last.text
    await doctor.send("/invite")
    await doctor.send("Bo Tran")
    await doctor.send("30/12/1990")
    await doctor.send("bo@example.com", expect=2)
    assert doctor.last.kind == "photo"


async def test_only_practitioners_can_invite(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    stranger = server.user(900, "Sam")
    await stranger.send("/invite")
    assert "only practitioners" in stranger.last.text
    await stranger.send("Somebody")  # not taken as a patient name
    assert "didn't understand" in stranger.last.text


async def test_start_and_help_before_signing_in(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    guest = server.user(901, "Guest")
    await guest.send("/start")
    assert "open the invite link" in guest.last.text and PRACTICE in guest.last.text
    await guest.send("/help")
    assert "/start" in guest.last.text and "/invite" not in guest.last.text
    await guest.send("/cancel")
    assert "nothing to cancel" in guest.last.text


async def test_bad_links_say_what_is_wrong_and_change_nothing(
    server: BotAPIServer, bot_db: Database
) -> None:
    user = server.user(700, "Ann")
    await user.send("/start not-a-real-token")
    assert "don't recognise this link" in user.last.text and "new invite link" in user.last.text
    await user.send("/start bad$chars!")
    assert "don't recognise this link" in user.last.text
    too_long = "A" * 65
    await user.open_link(f"https://t.me/{BOT}?start={too_long}")  # Telegram sends a bare /start
    assert "open the invite link" in user.last.text

    expired = await make_invite(bot_db, "Ann Lee")
    async with bot_db.transaction() as conn:
        inv = await invites.by_token_hash(conn, hash_token(expired.split("=")[1]))
        assert inv is not None
        await invites.expire_now(conn, inv.id)
    await user.open_link(expired)
    assert "expired on" in user.last.text

    used = await make_invite(bot_db, "Bo Tran", dt.date(1990, 12, 30))
    bo = server.user(701, "Bo")
    await bo.open_link(used)
    await bo.send("30/12/1990")
    await user.open_link(used)
    assert "already been used" in user.last.text
    async with bot_db.read() as conn:
        assert await logins.get(conn, 700) is None


async def test_three_wrong_dates_of_birth_lock_the_link(
    server: BotAPIServer, bot_db: Database
) -> None:
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/start")  # the practitioner has talked to the bot before
    link = await make_invite(bot_db, "Ann Lee", dt.date(1985, 2, 3), invited_by=500)
    ann = server.user(700, "Ann")
    await ann.open_link(link)
    await ann.send("yesterday")
    assert "couldn't read that as a date" in ann.last.text  # unreadable: not a try
    await ann.send("1/1/1985")
    assert "2 more tries" in ann.last.text
    await ann.send("2/1/1985")
    assert "1 more try" in ann.last.text
    await ann.send("3/1/1985", expect=1)
    assert "now locked" in ann.last.text
    await server.wait_idle()
    assert "locked after three wrong dates of birth" in doctor.last.text
    await ann.open_link(link)
    assert "locked" in ann.last.text
    await ann.send("3/2/1985")  # the right date no longer helps
    assert "didn't understand" in ann.last.text
    async with bot_db.read() as conn:
        assert await logins.get(conn, 700) is None


async def test_one_telegram_account_holds_one_portal(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    other = await make_invite(bot_db, "Bo Tran", dt.date(1990, 12, 30))
    await ann.open_link(other)
    assert "already signed in to a portal" in ann.last.text
    # Bo can still use his link.
    bo = server.user(701, "Bo")
    await bo.open_link(other)
    await bo.send("30/12/1990")
    assert "Welcome, Bo!" in bo.last.text


async def test_a_portal_cannot_be_taken_by_a_second_telegram_account(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
    again = await make_invite(bot_db, "Ann Lee", email="ann@example.com")  # same patient
    thief = server.user(666, "Mallory")
    await thief.open_link(again)
    assert "already connected to another Telegram account" in thief.last.text


async def test_signed_in_home_and_help(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/start")
    assert "signed in as Ann Lee" in ann.last.text
    assert "➕ Add a patient you access" in ann.last.labels
    await ann.send("/help")
    assert "/addpatient" in ann.last.text
    await ann.tap_data("zz:forged")
    assert ann.alerts[-1] == ("This button is no longer active.", True)
