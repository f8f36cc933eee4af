"""What PortalBot puts on the wire for the bot's keyboards is what PTB would have put there."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import Application

from bot.callbacks import ApproveRequest
from bot.i18n import translator
from bot.keyboards import Button, Keyboard, markup_json, ptb_markup
from bot.portalbot import PortalBot
from storage import Database
from tests.botapi import BotAPIServer, Fault
from tests.helpers import signed_in, until

FLOOD = "Too Many Requests: retry after 1"

# The same keyboard twice: ours, and built with PTB's own types.
OURS = Keyboard(
    [
        [Button("Next ▶", "p:1:2:3"), Button("Site", url="https://x.test/?a=1&b=ü")],
        [Button("✅ Approve", data=ApproveRequest(5).encode())],
        [],
        (Button("Ünïcödé", "x" * 64),),
    ]
)
PTBS = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Next ▶", callback_data="p:1:2:3"),
            InlineKeyboardButton("Site", url="https://x.test/?a=1&b=ü"),
        ],
        [InlineKeyboardButton("✅ Approve", callback_data=ApproveRequest(5).encode())],
        [],
        [InlineKeyboardButton("Ünïcödé", callback_data="x" * 64)],
    ]
)


def test_a_keyboard_is_encoded_as_ptb_encodes_it() -> None:
    assert markup_json(OURS) == PTBS.to_dict()
    assert markup_json(Keyboard()) == InlineKeyboardMarkup([]).to_dict()
    one = Keyboard([[Button("Open a private chat", url="https://t.me/bot")]])
    ptb_one = InlineKeyboardButton("Open a private chat", url="https://t.me/bot")
    assert markup_json(one) == InlineKeyboardMarkup([[ptb_one]]).to_dict()


def test_the_adapter_builds_the_same_keyboard_with_ptb_types() -> None:
    adapted = ptb_markup(OURS)
    assert adapted == PTBS  # PTB compares buttons by text and callback data or url
    assert adapted is not None and adapted.to_dict() == PTBS.to_dict()
    assert ptb_markup(None) is None


def test_a_button_has_exactly_one_of_data_and_url() -> None:
    """What mypy refuses (the overloads) is refused at run time too."""
    with pytest.raises(ValueError, match="exactly one"):
        Button("Both", "x", url="https://x.test")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="exactly one"):
        Button("Neither", None)  # type: ignore[call-overload]


# PTB's own RetryAfter warns, when it is made, that its retry_after will be a timedelta.
@pytest.mark.filterwarnings("ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")
async def test_a_flood_wait_on_a_taps_answer_and_edit_is_waited_out_and_retried(
    server: BotAPIServer, bot_db: Database
) -> None:
    """The lean path (PortalBot._call_lean) goes through PTB's rate limiter as every call
    does: a 429 with retry_after is waited out and the call made again, not an error."""
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/language")
    for method in ("answerCallbackQuery", "editMessageText"):
        server.faults.append(Fault(method, 429, FLOOD, chat_id=None, retry_after=1))
    await ann.tap("Tiếng Việt")  # returns at the first refusal: the retries come later
    done = translator("vi")("Done: I'll speak {language} from now on.")
    await ann.wait_for(done.format(language="Tiếng Việt"), timeout=10)
    # The answer goes once the reply has gone (bot/dispatch.py): its own wait comes after.
    await until(server, lambda: len(_answers(server)) == 2, "the answer's retry", wait_s=10)
    assert [f.fired for f in server.faults] == [1, 1]
    answers = _answers(server)
    assert len(answers) == 2 and answers[0] == answers[1], answers


def _answers(server: BotAPIServer) -> list[dict[str, object]]:
    return [params for method, params in server.calls if method == "answerCallbackQuery"]


async def test_the_lean_path_sends_what_ptbs_methods_send(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    """send_text, edit_text and clear_buttons put on the wire what send_message,
    edit_message_text and edit_message_reply_markup put there, Defaults and all."""
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    bot = app.bot
    assert isinstance(bot, PortalBot)
    markup = Keyboard([[Button("Go <b>", "x:1")]])
    text = "<b>Hello</b> https://example.com"
    first = len(server.calls)
    sent = await bot.send_message(700, text, reply_markup=ptb_markup(markup))
    raw = await bot.send_text(700, text, markup)
    assert raw is not None
    await bot.edit_message_text(text + "!", 700, sent.message_id, reply_markup=ptb_markup(markup))
    await bot.edit_text(700, raw["message_id"], text + "!", markup)
    await bot.edit_message_reply_markup(700, sent.message_id)
    await bot.clear_buttons(700, raw["message_id"])
    calls = server.calls[first:]
    assert len(calls) == 6, calls
    for (ptbs, ptb_params), (ours, our_params) in zip(calls[::2], calls[1::2], strict=True):
        assert ours == ptbs
        mine = {k: v for k, v in our_params.items() if k != "message_id"}
        assert mine == {k: v for k, v in ptb_params.items() if k != "message_id"}, ours
    assert "parse_mode" not in calls[-1][1] and "reply_markup" not in calls[-1][1]
    assert calls[0][1]["parse_mode"] == "HTML"
    assert not server.errors, server.errors
