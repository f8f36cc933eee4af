"""An update the library cannot read is skipped on its own: the poller moves past it, the
log names its update_id and why, never its content, and everyone else is served."""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot, Message, TelegramObject, Update
from telegram.ext import Application, Defaults, ExtBot

from bot.updates import _with_tapped_message_slimmed, parse_update
from tests.botapi import BotAPIServer

# What the three people typed: none of it may reach the log.
ANN_TEXT = "Ann here, born 03/02/1985, ann@example.com"
CAT_TEXT = "Cat Lee 1979-04-12 cat@example.com"
BOB_TEXT = "Bob, born 1984-06-01, bob@example.com"
NOT_UNDERSTOOD = "Sorry, I didn't understand that."


def _no_date(text: str) -> dict[str, object]:
    """A message PTB cannot parse: Telegram always sends its date."""
    cat = {"id": 803, "is_bot": False, "first_name": "Cat", "language_code": "en"}
    return {
        "message": {
            "message_id": 1,
            "chat": {"id": 803, "type": "private", "first_name": "Cat"},
            "from": cat,
            "text": text,
        }
    }


def _polls(server: BotAPIServer) -> int:
    return sum(name == "getUpdates" for name, _ in server.calls)


@pytest.mark.parametrize("where", ["between", "last"])
async def test_an_update_that_cannot_be_parsed_is_skipped_and_the_rest_are_served(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.INFO)
    ann, bob = server.user(801, "Ann"), server.user(802, "Bob")
    polls = _polls(server)
    # Queued together, without waiting in between: they arrive in one batch.
    if where == "between":
        asked = [ann.type_text(ANN_TEXT)]
        broken = server.enqueue_raw(_no_date(CAT_TEXT))
        asked.append(bob.type_text(BOB_TEXT))
    else:
        asked = [ann.type_text(ANN_TEXT), bob.type_text(BOB_TEXT)]
        broken = server.enqueue_raw(_no_date(CAT_TEXT))

    await ann.reaction(asked[0])
    await bob.reaction(asked[1])
    await server.wait_idle()

    assert ann.last.text.startswith(NOT_UNDERSTOOD), ann.transcript()
    assert bob.last.text.startswith(NOT_UNDERSTOOD), bob.transcript()
    # The poller moved past the broken update: a few polls, not one after another.
    assert _polls(server) - polls <= 4, _polls(server) - polls
    skipped = [r.getMessage() for r in caplog.records if r.name == "portal.updates"]
    assert skipped == [f"skipped update {broken}: cannot parse it (KeyError)"], caplog.text
    for text in (ANN_TEXT, CAT_TEXT, BOB_TEXT, "1985", "1979", "1984", "@example.com"):
        assert text not in caplog.text, text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_what_a_newer_bot_api_adds_changes_nothing(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A field this library does not know yet, in a message or as an update of its own
    (which Telegram sends only if allowed_updates asks for it; the webhook test posts one
    anyway)."""
    caplog.set_level(logging.INFO)
    ann = server.user(801, "Ann")
    ann.started = True
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": ann.chat_json(),
        "from": ann.user_json(),
        "text": "/help",
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        "paid_reaction_of_2031": {"stars": 5},
    }
    server.enqueue_raw({"message": message})
    server.enqueue_raw({"message_reaction_v99": {"date": int(time.time()), "emoji": "🎉"}})
    await ann.send("/help")
    await server.wait_idle()
    answers = [m.text for m in ann.bot_messages]
    assert len(answers) == 2 and all(a.startswith("What I can do") for a in answers), answers
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_tap_is_read_with_only_what_identifies_the_message_tapped() -> None:
    """No handler reads the tapped message's text, formatting or buttons (what was tapped
    is the callback data), and PTB would build objects for them: they are left out; which
    message it is, in which chat, stays, as does the rest of the tap, and the raw update is
    not changed."""
    buttons = {"inline_keyboard": [[{"text": "Next ▶", "callback_data": "pg:appointments:5:1:0"}]]}
    message = {
        "message_id": 7,
        "date": 1_700_000_000,
        "chat": {"id": 803, "type": "private", "first_name": "Cat"},
        "from": {"id": 1, "is_bot": True, "first_name": "Portal"},
        "text": "Appointments",
        "entities": [{"type": "bold", "offset": 0, "length": 12}],
        "reply_markup": buttons,
    }
    tapper = {"id": 803, "is_bot": False, "first_name": "Cat"}
    query = {"id": "q", "from": tapper, "chat_instance": "c", "data": "x", "message": message}
    data = {"update_id": 5, "callback_query": query}
    update = parse_update(data, Bot("123:abc"))
    assert update is not None and update.callback_query is not None
    tapped = update.callback_query.message
    assert isinstance(tapped, Message)
    assert (tapped.message_id, tapped.chat.id, tapped.chat.type) == (7, 803, "private")
    assert tapped.date.timestamp() == 1_700_000_000
    assert update.callback_query.data == "x" and update.callback_query.from_user.id == 803
    assert (tapped.text, tapped.entities, tapped.reply_markup, tapped.from_user) == (
        None,
        (),
        None,
        None,
    )
    assert data["callback_query"]["message"]["reply_markup"] == buttons  # type: ignore[index]


def _everything(obj: object, bot: Bot) -> object:
    """Every slot of a library object, and of each object in it, with its exact class; the
    bot each was given, by identity."""
    if isinstance(obj, tuple):
        return tuple(_everything(item, bot) for item in obj)
    if isinstance(obj, datetime):  # equal instants in two zones compare equal
        return obj.isoformat(), obj.tzinfo
    if not isinstance(obj, TelegramObject):
        return obj
    found: dict[str, object] = {"class": type(obj), "bot is ours": obj.get_bot() is bot}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("_bot", "__weakref__"):
                found[name] = _everything(getattr(obj, name, "<unset>"), bot)
    return found


_ANN = {"id": 801, "is_bot": False, "first_name": "Ann", "language_code": "vi"}
_ANN_CHAT = {"id": 801, "type": "private", "first_name": "Ann"}
_LEE = {
    "id": 802,
    "is_bot": False,
    "first_name": "Lee",
    "last_name": "Tran",
    "username": "lee",
    "is_premium": True,
}
_LEE_CHAT = {"id": 802, "type": "private", "first_name": "Lee", "last_name": "Tran"}
_TAPPED = {"message_id": 9, "date": 1_700_000_000, "chat": _ANN_CHAT}


@pytest.mark.parametrize(
    "data",
    [
        {"message": {"message_id": 1, "date": 1_700_000_000, "chat": _ANN_CHAT, "text": "hi"}},
        {
            "message": {
                "message_id": 2,
                "date": 1_700_000_001,
                "chat": _LEE_CHAT,
                "from": _LEE,
                "text": "/start abc",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            }
        },
        {
            "message": {  # a field this library may not know
                "message_id": 3,
                "date": 1_700_000_002,
                "chat": {**_ANN_CHAT, "is_direct_messages_2031": True},
                "from": {**_ANN, "has_a_new_field": 1},
                "text": "x",
                "entities": [{"type": "new_kind_of_entity", "offset": 0, "length": 1}],
            }
        },
        {"message": {"message_id": 4, "date": 1_700_000_003, "chat": _ANN_CHAT, "photo": []}},
        {"callback_query": {"id": "q1", "from": _ANN, "chat_instance": "c", "data": "d"}},
        {
            "callback_query": {
                "id": "q2",
                "from": _LEE,
                "chat_instance": "c",
                "data": "pg:appointments:5:1:0",
                "message": {**_TAPPED, "text": "Appointments", "from": _ANN},
            }
        },
        {
            "callback_query": {  # on a message too old to reach (Telegram's date 0)
                "id": "q3",
                "from": _ANN,
                "chat_instance": "c",
                "data": "d",
                "message": {**_TAPPED, "date": 0},
            }
        },
        {
            "callback_query": {
                "id": "q4",
                "from": _ANN,
                "chat_instance": "c",
                "inline_message_id": "im",
                "game_short_name": "g",
            }
        },
        {"edited_message": {"message_id": 5, "date": 1_700_000_004, "chat": _ANN_CHAT}},
    ],
    ids=lambda data: next(iter(data)),
)
@pytest.mark.parametrize("zone", [None, "Asia/Ho_Chi_Minh"])
def test_an_update_read_quickly_is_the_one_the_library_reads(
    data: dict[str, Any], zone: str | None
) -> None:
    """A plain text or tap is built without the library's de_json (bot/updates.py): it must
    come out exactly as de_json makes it (of the slimmed tap), every object of the library's
    own class, frozen, with every attribute equal, in the Defaults' time zone when set."""
    bot = ExtBot("123:abc", defaults=Defaults(tzinfo=ZoneInfo(zone)) if zone else None)
    data = {"update_id": 40, **data}
    raw = copy.deepcopy(data)
    read = parse_update(data, bot)
    assert data == raw  # the raw update is left as it came
    expected = Update.de_json(copy.deepcopy(_with_tapped_message_slimmed(data)), bot)
    assert read is not None and _everything(read, bot) == _everything(expected, bot)
    message = read.effective_message
    if message is not None:
        with pytest.raises(AttributeError):
            message.text = "changed"  # type: ignore[misc]
