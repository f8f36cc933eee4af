"""When things go wrong: a full disk, a recipient who blocked the bot, very long text,
hostile input everywhere. Nothing half-written, nothing silent, no traceback to users."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from bot import access
from bot.access import AccessRequest, Area
from bot.callbacks import (
    ApproveAs,
    ApproveRequest,
    AskToCancel,
    CancelAppointment,
    ChangeLevel,
    ConfirmAppointment,
    GiveOwnLogin,
    OpenArea,
    OpenDependent,
    RevokeAccess,
    SwitchTo,
    TurnFoundPage,
    TurnLogPage,
    TurnPage,
)
from bot.text import split_text
from storage import Database, grants
from storage.clock import FixedClock
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import (
    add_child_up_to_confirm,
    make_invite,
    make_practitioner,
    signed_in,
)

WENT_WRONG = "Something went wrong; nothing was changed. Please try again."
NASTY = [
    "\u202eevil\u202c",  # right-to-left override
    "<b>bold</b> & <script>x</script>",
    "Zoë 👩‍👧 李 محمد",
    "a\u0000b",
    "\u200b",
    "x" * 4096,
    "'; DROP TABLE patients; --",
    "{name} {0} %s",
    "e\u0301\u0301\u0301" * 50,
]


async def _count(db: Database, table: str) -> int:
    async with db.read() as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        return int((await cur.fetchone())[0])


async def _limit_pages(db: Database, pages: int) -> None:
    """A disk that is full for both of the database's writers (max_page_count is per
    connection): aiosqlite's, and the loop's that transactions run on."""
    await db.conn.execute(f"PRAGMA max_page_count = {pages}")
    async with db.transaction() as conn:
        await conn.execute(f"PRAGMA max_page_count = {pages}")


async def test_a_full_disk_gets_the_error_message_and_writes_nothing(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await add_child_up_to_confirm(ann)
    cur = await bot_db.conn.execute("PRAGMA page_count")
    pages = (await cur.fetchone())[0]
    await _limit_pages(bot_db, pages)
    # Fill the free pages and the tables this step writes to, so it finds the disk full.
    fillers = [
        "INSERT INTO patients (full_name, created_at) VALUES ('f', 0)",
        "INSERT INTO grants (accessor_id, subject_email, relationship, level, role, status,"
        " requested_at) VALUES (1, 'f', 'other', 'clinical', 'view', 'denied', 0)",
        "INSERT INTO audit_events (at, action, outcome) VALUES (0, 'f', 'ok')",
    ]
    for statement in fillers:
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for _ in range(100_000):
                async with bot_db.transaction() as conn:
                    await conn.execute(statement)
    patients_before = await _count(bot_db, "patients")
    grants_before = await _count(bot_db, "grants")
    try:
        await ann.tap("✅ Confirm")
        assert ann.alerts[-1] == (WENT_WRONG, True) or ann.last.text == WENT_WRONG
    finally:
        await _limit_pages(bot_db, 1073741823)
    assert await _count(bot_db, "patients") == patients_before
    assert await _count(bot_db, "grants") == grants_before
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM patients WHERE full_name = 'Mia Lee'")
        assert (await cur.fetchone())[0] == 0
    async with bot_db.read() as conn:
        cur = await conn.execute("PRAGMA integrity_check")
        assert (await cur.fetchone())[0] == "ok"


async def test_a_recipient_who_blocked_the_bot_does_not_break_the_request(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    server.block(701)
    await ann.send("/addpatient")
    await ann.send("Bob")
    await ann.tap("Partner")
    await ann.tap("Clinical")
    await ann.tap("View")
    await ann.tap("Yes, they have a login")
    await ann.send("bob@example.com")
    await ann.tap("✅ Confirm")
    assert "asked to approve" in ann.last.text
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT id, status, notified_at FROM grants")
        grant_id, status, notified = await cur.fetchone()
    assert (status, notified) == ("pending", None)
    server.unblock(701)  # Telegram tells the bot: the card waiting for Bob goes out
    card = await bob.wait_for("Ann Lee asks to access your patient portal")
    await bob.tap("✅ Approve", message=card)
    async with bot_db.read() as conn:
        assert (await grants.get(conn, grant_id)).status == "active"  # type: ignore[union-attr]


async def test_long_lists_are_split_into_messages_telegram_accepts(
    server: BotAPIServer, bot_db: Database, pinned_clock: FixedClock
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT patient_id FROM logins WHERE telegram_user_id = 700")
        me = (await cur.fetchone())[0]
    for i in range(70):
        await access.create_dependent(
            bot_db,
            me,
            f"Child Number {i:03} With A Long Name",
            dt.date(2015, 1, 1),
            AccessRequest("c", Relationship.CHILD, None, Level.CLINICAL, Role.EDIT),
        )
    sent = await ann.send("/access", expect=2)
    assert len(sent) >= 2 and all(len(m.text) <= 4096 for m in sent)
    assert "Child Number 069" in "".join(m.text for m in ann.bot_messages)
    await ann.tap("Child Number 000 With A Long Name ›")
    await ann.tap("◀ Back")  # re-rendered in place: shortened to fit one message
    assert not server.errors, server.errors[:1]


def test_split_text_keeps_lines_whole() -> None:
    text = "\n".join(f"<b>line {i}</b> " + "x" * 50 for i in range(200))
    parts = split_text(text)
    assert all(len(p) <= 4096 for p in parts) and "\n".join(parts) == text
    assert all(p.count("<b>") == p.count("</b>") for p in parts)
    assert split_text("y" * 5000) == ["y" * 4096, "y" * 904]


async def _no_error(user: SimUser, server: BotAPIServer) -> None:
    assert not [m for m in user.bot_messages if WENT_WRONG in m.text], user.transcript()
    assert not server.errors, server.errors[:1]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
async def test_hostile_text_in_every_typed_step(
    server: BotAPIServer, bot_db: Database, text: str
) -> None:
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    await doctor.send(text)
    await doctor.send("Bo Tran")
    await doctor.send(text)  # as a date of birth
    await doctor.send("30/12/1990")
    await doctor.send(text)  # as an email
    ann = server.user(700, "Ann")
    link = await make_invite(bot_db, "Ann Lee", dt.date(1985, 2, 3))
    await ann.open_link(link)
    await ann.send(text)  # as a date of birth
    await ann.send("3/2/1985")
    for step in ([], ["Child", "Clinical", "Edit", "No, create an account for them"]):
        await ann.send("/addpatient")
        await ann.send(text)  # as a name
        await ann.send("Mia")
        for label in step:
            await ann.send(text)  # where buttons are expected
            await ann.tap(label)
        await ann.send(text)
        await ann.send("/cancel")
    await ann.send(text)  # outside any flow
    await _no_error(doctor, server)
    await _no_error(ann, server)


FORGED = [
    ApproveRequest(1).encode(),
    "ap:ok:-1",
    "ap:no:99999999999999999999",
    "ap:chg:1:zz",
    "ap:ok:1:ce",  # level and role in the letters of old
    ApproveAs(1, Level.CLINICAL, Role.EDIT).encode(),
    SwitchTo(1).encode(),
    "sw:abc",
    TurnPage(Area.RECORDS, 1, 0).encode(),
    TurnPage(Area.APPOINTMENTS, 999, 999999).encode(),
    "pg:x:1:0",
    "pg:r:1:0",  # the one-letter views of old
    CancelAppointment(1, 1, 0).encode(),
    ConfirmAppointment(2, 1, 0).encode(),
    AskToCancel(1, 1, 0).encode(),
    RevokeAccess(1).encode(),
    ChangeLevel(1, Level.CLINICAL).encode(),
    "ac:lv:1:c",
    GiveOwnLogin(1).encode(),
    OpenDependent(1).encode(),
    TurnLogPage(1, 0).encode(),
    TurnFoundPage(0, "!!").encode(),
    "lang:xx",
    "lang:en",
    "add:ok",
    "inv:skip",
    "sh:start:1",
    "sh:ok",
    OpenArea(Area.RECORDS).encode(),
    "home:v:r",
    "home:add",
    "",
    "x" * 64,
    "ap:ok:1" + "\u0000",
]


@pytest.mark.parametrize("data", FORGED)
async def test_forged_button_data_always_gets_an_answer(
    server: BotAPIServer, bot_db: Database, data: str
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/start")
    await ann.tap_data(data or " ", message=ann.last)
    assert ann.alerts, "every tap must be answered"
    await _no_error(ann, server)


@pytest.mark.parametrize(
    "payload", ["A" * 64, "../../etc/passwd", "A" * 200, "Zm9v", "-" * 43, "😀", "a b", "%00"]
)
async def test_forged_start_payloads(server: BotAPIServer, bot_db: Database, payload: str) -> None:
    user = server.user(990, "Mallory")
    await user.send(f"/start {payload}")
    assert "don't recognise this link" in user.last.text
    await _no_error(user, server)
