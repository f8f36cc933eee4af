"""Sending text that may be longer than one Telegram message allows."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardMarkup, Message

from bot.text import split_text


async def send_long(
    bot: Bot, chat_id: int, text: str, reply_markup: InlineKeyboardMarkup | None = None
) -> Message:
    """Split at line breaks into messages of at most 4096 characters; buttons go on the last."""
    parts = split_text(text)
    for part in parts[:-1]:
        await bot.send_message(chat_id, part)
    return await bot.send_message(chat_id, parts[-1], reply_markup=reply_markup)
