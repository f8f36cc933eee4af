"""Prompts, end to end: a prompt that has been answered loses its buttons, a decision
reaches every card that asked for it, and what the bot asks of the Bot API is only what
each method takes (no markup without buttons, no parse_mode where there is no text)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram.ext import Application

from bot import access
from bot.access import AccessRequest
from bot.app import build_application, running
from bot.context import portal
from bot.settings import load_settings
from storage import Database, logins
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import make_practitioner, signed_in

MIA = AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT)
ASK = AccessRequest("x", Relationship.PARTNER, None, Level.CLINICAL, Role.EDIT)


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        login = await logins.get(conn, telegram_id)
    assert login is not None
    return login.patient_id


@pytest.fixture
async def quick_app(server: BotAPIServer, db_path: Path) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """The bot with flows that time out after a second."""
    settings = load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=db_path,
        conversation_timeout=1.0,
    )
    async with running(build_application(settings), poll_timeout=1) as app:
        yield app


def _with_buttons(user: SimUser) -> list[Msg]:
    return [m for m in user.bot_messages if m.buttons]


async def test_a_typed_answer_takes_the_buttons_off_the_prompt_it_answers(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    home = ann.last  # the welcome, with the home buttons: not a prompt of any flow

    # /addpatient: every typed answer leaves only the newest prompt with buttons.
    await ann.send("/addpatient")
    name_prompt = ann.last
    assert name_prompt.labels == ["Cancel"]
    await ann.send("Mia Lee")
    assert name_prompt.buttons == [] and "What is Mia Lee to you?" in ann.last.text
    await ann.tap("Child")
    await ann.tap("Clinical")
    await ann.tap("Edit")
    await ann.tap("No, create an account for them")
    dob_prompt = ann.last
    assert dob_prompt.labels == ["◀ Back", "Cancel"]
    await ann.send("not a date")  # asked again below: the old prompt is answered
    assert dob_prompt.buttons == [] and ann.last.labels == ["◀ Back", "Cancel"]
    await ann.send("1/2/2018")
    assert "Please check" in ann.last.text
    assert _with_buttons(ann) == [home, ann.last]
    await ann.send("hello")  # where a button is expected: reminded, asked again
    assert _with_buttons(ann) == [home, ann.last] and "Please check" in ann.last.text
    await ann.send("/help")  # not an answer: the question stays open
    assert "Please check" in ann.messages[-3].text and ann.messages[-3].buttons
    await ann.send("/cancel")
    assert _with_buttons(ann) == [home] and "Cancelled" in ann.last.text

    # Sharing a held dependent: the email prompt's Cancel goes once the email is typed.
    ann_id = await _patient_id(bot_db, 700)
    await access.create_dependent(bot_db, ann_id, "Mia Lee", dt.date(2016, 5, 1), MIA)
    await ann.send("/access")
    await ann.tap("Mia Lee's account ›")
    await ann.tap("Share Mia Lee with someone")
    email_prompt = ann.last
    assert email_prompt.labels == ["Cancel"]
    await ann.send("bob@example.com")
    assert email_prompt.buttons == [] and "Which access should they have?" in ann.last.text
    await ann.tap("Cancel")
    assert ann.last.text == "Cancelled. Nothing was sent." and ann.last.buttons == []

    # /invite and /unlink, a practitioner's flows.
    await make_practitioner(bot_db, 500, "Dr Rao")
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    asked = doctor.last
    await doctor.send("Jo Park")
    assert asked.buttons == [] and doctor.last.labels == ["◀ Back", "Cancel"]
    asked = doctor.last
    await doctor.send("/cancel")
    assert asked.buttons == [] and _with_buttons(doctor) == []
    await doctor.send("/unlink")
    asked = doctor.last
    assert asked.labels == ["Cancel"]
    await doctor.send("Ann Lee")
    assert asked.buttons == [] and "Sign Ann Lee out" in doctor.last.text
    assert _with_buttons(doctor) == [doctor.last]  # the question's answer: Yes or Cancel
    # A tapped answer in a practitioner's flow: the prompt keeps its words and loses its
    # buttons, and what follows comes below it.
    await doctor.tap("No")
    await doctor.send("/unlink")
    asked = doctor.last
    await doctor.tap("Cancel")
    assert asked.buttons == [] and asked.text != doctor.last.text
    assert doctor.last.text == "Cancelled. Nothing changed."


async def test_a_timed_out_prompt_loses_its_buttons(
    server: BotAPIServer,
    quick_app: Application,  # type: ignore[type-arg]
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(portal(quick_app).db, ann, "Ann Lee")
    await ann.send("/addpatient")
    await ann.send("Mia Lee")
    asked = ann.last
    assert "What is Mia Lee to you?" in asked.text and asked.buttons
    await ann.wait_for("You didn't finish adding a patient", after=asked.message_id)
    await server.wait_idle()
    assert asked.buttons == []


async def test_a_decision_from_access_reaches_the_card_that_asked(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    newest = ann.last.message_id
    await access.request_by_email(
        bot_db, await _patient_id(bot_db, 701), "ann@example.com", ASK, 14
    )
    card = await ann.wait_for("asks to access your patient portal", after=newest)
    assert card.labels[:2] == ["✅ Approve", "❌ Deny"]
    await ann.send("/access")
    await ann.tap("✅ Approve Bob Lee")
    await ann.wait_for("Approved", after=newest)  # the card, edited by the outbox
    assert card.buttons == [] and card.edited
    assert "Approved" in card.text


async def test_requests_carry_only_what_each_method_takes(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/access")  # nobody, nothing pending: a message without buttons
    assert "Nobody yet" in ann.last.text and ann.last.buttons == []
    await ann.send("/addpatient")
    await ann.tap("Cancel")
    assert "Cancelled" in ann.last.text and ann.last.buttons == []
    await make_practitioner(bot_db, 500, "Dr Rao")
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    await doctor.send("Jo Park")
    await doctor.tap("◀ Back")  # the tapped prompt's buttons go: editMessageReplyMarkup
    await doctor.tap("Cancel")

    markups = [p["reply_markup"] for _, p in server.calls if "reply_markup" in p]
    assert markups and all(m.get("inline_keyboard") for m in markups), markups
    edits = [p for method, p in server.calls if method == "editMessageReplyMarkup"]
    assert edits and not [p for p in edits if "parse_mode" in p], edits
    assert not [e for e in server.errors if e["strict"]], server.errors
