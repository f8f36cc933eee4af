"""The bot's Bot: PTB's ExtBot, plus replies that can wait until a step is stored.

A conversation step must be stored before its prompt is seen: if the bot died between
showing the next question and storing that it asked it, the user's answer would be
refused after the restart. So while a step runs (conversations/__init__.py), what it says
is held and goes out right after the step is stored. Holding is by context variable, so
it covers exactly the one update being handled, however its handler reaches the bot
(`message.reply_text`, `query.answer`, `context.bot.send_message`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from telegram.ext import ExtBot

HeldCall = Callable[[], Awaitable[object]]
_held: contextvars.ContextVar[list[HeldCall] | None] = contextvars.ContextVar(
    "held_replies", default=None
)


@contextlib.contextmanager
def holding_replies() -> Iterator[list[HeldCall]]:
    """Within this block, what the bot sends or edits is held in the returned list."""
    held: list[HeldCall] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


@contextlib.contextmanager
def replies_now() -> Iterator[None]:
    """Within this block nothing is held: the outbox's sends need their answers."""
    token = _held.set(None)
    try:
        yield
    finally:
        _held.reset(token)


def _holdable(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: PortalBot, *args: Any, **kwargs: Any) -> Any:
        held = _held.get()
        if held is None:
            return await method(self, *args, **kwargs)
        # No handler inside a step uses what a send returns: None stands in for it.
        held.append(functools.partial(method, self, *args, **kwargs))
        return None

    return call


class PortalBot(ExtBot[None]):
    """ExtBot whose replies wait while a conversation step is being stored."""

    send_message = _holdable(ExtBot.send_message)  # type: ignore[assignment]
    send_photo = _holdable(ExtBot.send_photo)  # type: ignore[assignment]
    edit_message_text = _holdable(ExtBot.edit_message_text)  # type: ignore[assignment]
    edit_message_reply_markup = _holdable(ExtBot.edit_message_reply_markup)  # type: ignore[assignment]
    answer_callback_query = _holdable(ExtBot.answer_callback_query)  # type: ignore[assignment]
    delete_message = _holdable(ExtBot.delete_message)  # type: ignore[assignment]
