"""What a reply waits for: nothing but its own round trip to Telegram.

The answer to a tap only stops the button's spinner, so it goes once the reply has gone,
not a round trip in front of it (bot/portalbot.py answers_after_reply; a conversation
step's in conversations/__init__.py). Each test holds the answer in the emulator and finds
the reply on screen while it is still held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from bot.callbacks import TurnPage
from storage import Database, portal
from storage.db import now
from tests.botapi import BotAPIServer, Fault, Hold, Msg, SimUser
from tests.helpers import signed_in, until

HOUR = 3600
WAIT_S = 5.0


async def _with_appointments(db: Database, server: BotAPIServer) -> SimUser:
    """Ann, signed in, with two pages of upcoming appointments."""
    ann = server.user(700, "Ann")
    await signed_in(db, ann, "Ann Lee")
    async with db.read() as conn:
        cur = await conn.execute("SELECT patient_id FROM logins WHERE telegram_user_id = 700")
        ann_id = (await cur.fetchone())[0]
    start = now() + 24 * HOUR
    async with db.transaction() as conn:
        for i in range(12):
            at = start + i * 24 * HOUR
            await portal.add_appointment(conn, ann_id, at, at + HOUR, f"Dr Ann {i:02}", "Room 1")
    return ann


def _next_page(page: Msg) -> str:
    """The callback data of the page's ▶."""
    found = [b.callback_data for row in page.buttons for b in row if "▶" in b.text]
    assert found and found[0] is not None and TurnPage.parse(found[0]) is not None, page
    return found[0]


def _answers(server: BotAPIServer, since: int) -> list[str]:
    return [name for name, _ in server.calls[since:] if name == "answerCallbackQuery"]


async def _tap_with_answer_held(
    server: BotAPIServer,
    user: SimUser,
    message: Msg,
    data: str,
    shown: Callable[[], bool],
    what: str,
) -> None:
    """Tap with Telegram holding the tap's answer: the reply is on screen (`shown`) while the
    answer is still held; then the answer goes through and the bot settles."""
    hold = Hold("answerCallbackQuery", chat_id=None)
    server.holds.append(hold)
    user.press(message, data)
    await asyncio.wait_for(hold.reached.wait(), WAIT_S)
    await until(server, shown, what)
    hold.opened.set()
    await server.wait_idle()


async def test_a_page_turn_is_shown_while_the_answer_to_its_tap_is_on_its_way(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = await _with_appointments(bot_db, server)
    page = (await ann.send("/appointments"))[-1]
    assert "Dr Ann 00" in page.text, ann.transcript()
    calls = len(server.calls)
    await _tap_with_answer_held(
        server,
        ann,
        page,
        _next_page(page),
        lambda: "Dr Ann 00" not in page.text,
        "the next page with the answer held",
    )
    assert _answers(server, calls) == ["answerCallbackQuery"], server.calls[calls:]
    assert not server.errors, server.errors


async def test_a_step_of_a_flow_is_shown_while_the_answer_to_its_tap_is_on_its_way(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/addpatient")
    await ann.send("Mia Lee")
    question = ann.last
    assert "What is Mia Lee to you?" in question.text, ann.transcript()
    calls = len(server.calls)
    daughter = next(b for row in question.buttons for b in row if b.text == "Daughter")
    await _tap_with_answer_held(
        server,
        ann,
        question,
        daughter.callback_data or "",
        lambda: "What is Mia Lee to you?" not in question.text,
        "the next question with the answer held",
    )
    assert _answers(server, calls) == ["answerCallbackQuery"], server.calls[calls:]
    # The step went on: the next tap is the question it now asks.
    await ann.tap("Clinical", message=question)
    assert not server.errors, server.errors


async def test_a_refused_answer_to_a_page_turn_still_turns_the_page(
    server: BotAPIServer, bot_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The answer goes on its own: its refusal is logged there, and stops nothing."""
    ann = await _with_appointments(bot_db, server)
    page = (await ann.send("/appointments"))[-1]
    caplog.set_level(logging.INFO, logger="bot.portalbot")
    server.faults.append(Fault("answerCallbackQuery", 400, "Bad Request: query is too old"))
    await ann.tap_data(_next_page(page), message=page)
    assert "Dr Ann 00" not in page.text and "Dr Ann" in page.text, ann.transcript()
    assert server.faults[0].fired == 1
    assert all("went wrong" not in m.text for m in ann.bot_messages), ann.transcript()
    assert "a callback query was not answered: BadRequest" in caplog.text


async def test_a_person_in_notifications_is_shown_while_the_answer_to_its_tap_is_on_its_way(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    [menu] = await ann.send("/notifications")
    before = menu.text
    me = next(b for row in menu.buttons for b in row if b.text == "Me (Ann Lee)")
    await _tap_with_answer_held(
        server,
        ann,
        menu,
        me.callback_data or "",
        lambda: menu.text != before,
        "Ann's notifications with the answer held",
    )
    assert "✅ Appointment reminders" in menu.labels, ann.transcript()
    assert not server.errors, server.errors


async def test_a_refused_answer_to_a_flows_tap_is_no_error(
    server: BotAPIServer, bot_db: Database
) -> None:
    """A step's held answer is refused ("query is too old"): the step goes on, and the
    user is not told that something went wrong."""
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/addpatient")
    await ann.send("Mia Lee")
    question = ann.last
    server.faults.append(Fault("answerCallbackQuery", 400, "Bad Request: query is too old"))
    await ann.tap("Daughter", message=question)
    assert server.faults[0].fired == 1
    assert all("went wrong" not in m.text for m in ann.bot_messages), ann.transcript()
    await ann.tap("Clinical", message=question)  # the step went on: its next question
    assert not [e for e in server.errors if e["method"] != "answerCallbackQuery"], server.errors
