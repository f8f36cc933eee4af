"""Sending and editing text within Telegram's limits, one way everywhere."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, CallbackQuery, Message, Update
from telegram.error import BadRequest, TelegramError

from bot.keyboards import Button, Keyboard, ptb_markup
from bot.portalbot import PortalBot
from bot.text import split_text

EDIT_LIMIT = 4000
log = logging.getLogger(__name__)


def keyboard(rows: Sequence[Sequence[Button]]) -> Keyboard | None:
    """These rows of buttons as a message's markup; None when there are none, as a message
    without buttons has no markup (an edit without one also takes the old buttons away)."""
    kept = [row for row in rows if row]
    return Keyboard(kept) if kept else None


async def send_long(
    bot: Bot, chat_id: int, text: str, reply_markup: Keyboard | None = None
) -> None:
    """Split at line breaks into messages of at most 4096 characters; buttons go on the last.
    Nobody reads the messages back, so PortalBot does not build them (bot/portalbot.py)."""
    parts = split_text(text)
    for i, part in enumerate(parts):
        markup = reply_markup if i == len(parts) - 1 else None
        if isinstance(bot, PortalBot):
            await bot.send_text(chat_id, part, markup)
        else:
            await bot.send_message(chat_id, part, reply_markup=ptb_markup(markup))


async def edit_in_place(
    query: CallbackQuery, text: str, reply_markup: Keyboard | None = None
) -> None:
    """Edit the message whose button was tapped. A repeated tap that would change nothing
    ("message is not modified") is not an error; an edit cannot be split, so overlong text
    is shortened to one message."""
    parts = split_text(text, EDIT_LIMIT)
    text = parts[0] + ("\n…" if len(parts) > 1 else "")
    bot, message = query.get_bot(), query.message
    try:
        if isinstance(bot, PortalBot) and isinstance(message, Message):
            await bot.edit_text(message.chat.id, message.message_id, text, reply_markup)
        else:  # an inline message, or one PTB refuses to edit: PTB's way, and its errors
            await query.edit_message_text(text, reply_markup=ptb_markup(reply_markup))
    except BadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def answer_quietly(
    query: CallbackQuery, text: str | None = None, alert: bool = False
) -> None:
    """Answer a tap after a change was saved: the answer only stops the button's spinner,
    so a refusal ("query is too old", a timeout) must not stop what follows."""
    try:
        await query.answer(text, show_alert=alert)
    except TelegramError as exc:
        log.info("a callback query was not answered: %s", type(exc).__name__)


async def send_to_chat(update: Update, text: str, reply_markup: Keyboard | None = None) -> None:
    """A new message in this update's chat (a tapped button's too), split like send_long."""
    assert update.effective_chat is not None
    await send_long(update.get_bot(), update.effective_chat.id, text, reply_markup)
