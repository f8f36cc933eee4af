"""The framework floor: a bare python-telegram-bot application that answers every update
with the same Bot API calls the portal bot makes, and does nothing else."""

from __future__ import annotations

import ssl
from typing import Any

from telegram import Message, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    filters,
)

from bot.processing import OneAtATimePerUser
from bot.transport import AiohttpRequest

# What ApplicationBuilder builds with PTB's defaults.
EchoApp = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


async def _reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    await message.reply_text(f"echo: {message.text}")


async def _tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    # The update id makes every edit differ, so Telegram never says "not modified".
    await query.edit_message_text(
        f"echo: {query.data} #{update.update_id}",
        reply_markup=query.message.reply_markup if isinstance(query.message, Message) else None,
    )


def build_echo(token: str, base_url: str, *, portal_transport: bool = False) -> EchoApp:
    """PTB's defaults, or with `portal_transport` the portal bot's Bot API transport
    (bot/transport.py), to tell the handlers' cost from the transport's."""
    # Updates scheduled as the portal bot's are (bot/processing.py), so both pay the same
    # framework costs per update and differ only in what the handlers do.
    builder = (
        ApplicationBuilder().token(token).base_url(base_url).concurrent_updates(OneAtATimePerUser())
    )
    if portal_transport:
        tls = ssl.create_default_context()
        builder = builder.request(AiohttpRequest(256, tls))
        builder = builder.get_updates_request(AiohttpRequest(1, tls))
    app = builder.build()
    app.add_handler(CommandHandler(["start", "appointments", "switch", "addpatient"], _reply))
    app.add_handler(MessageHandler(filters.TEXT, _reply))
    app.add_handler(CallbackQueryHandler(_tap))
    return app
