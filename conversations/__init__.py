"""ConversationHandler state machines, one module per flow."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import BaseHandler, ContextTypes, ConversationHandler
from telegram.warnings import PTBUserWarning

from bot.persistence import Deadlines, SQLitePersistence
from bot.portalbot import holding_replies

log = logging.getLogger(__name__)
Step = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[object]]


@dataclass(frozen=True)
class Flows:
    """What every flow needs from the application: its timeout and the deadlines of
    conversations restored after a restart."""

    timeout: float
    deadlines: Deadlines


class RestoredTimeout(BaseHandler[Update, ContextTypes.DEFAULT_TYPE, int]):
    """First in every state: a conversation restored after a restart whose deadline has
    passed ends with the flow's own timeout message, whatever the user sends."""

    def __init__(self, name: str, deadlines: Deadlines, timed_out: Any) -> None:
        super().__init__(timed_out)
        self.name = name
        self.deadlines = deadlines

    def check_update(self, update: object) -> bool:
        if not isinstance(update, Update) or not update.effective_chat or not update.effective_user:
            return False
        key = (update.effective_chat.id, update.effective_user.id)
        return self.deadlines.stale(self.name, key)


def conversation(
    flows: Flows, *, name: str, states: dict[object, list[Any]], **kwargs: Any
) -> ConversationHandler[Any]:
    """A persistent, per-user, per-chat conversation whose buttons work on the latest prompt.

    per_message=False is deliberate (the flows mix typed answers and buttons), so PTB's
    construction-time hint about tracking CallbackQueryHandlers per message does not apply.
    """
    timed_out = states[ConversationHandler.TIMEOUT][0].callback
    guard = RestoredTimeout(name, flows.deadlines, timed_out)
    guarded = {
        state: handlers if state == ConversationHandler.TIMEOUT else [guard, *handlers]
        for state, handlers in states.items()
    }
    for state, handlers in guarded.items():
        if state != ConversationHandler.TIMEOUT:  # a timeout has no prompt to hold
            _store_before_replying(name, handlers)
    _store_before_replying(name, kwargs.get("entry_points", []))
    _store_before_replying(name, kwargs.get("fallbacks", []))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)
        return ConversationHandler(
            name=name,
            states=guarded,  # type: ignore[arg-type]
            per_user=True,
            per_chat=True,
            per_message=False,
            persistent=True,
            conversation_timeout=flows.timeout,
            **kwargs,
        )


def _store_before_replying(name: str, handlers: list[Any]) -> None:
    for handler in handlers:
        if not getattr(handler.callback, "stores_first", False):
            handler.callback = _stored_first(name, handler.callback)


# The ids of a user's last updates that a step handled, kept with their drafts: enough to
# recognise the few Telegram sends again after a crash (it had not heard they arrived).
SEEN_KEY = "seen_updates"
SEEN_UPDATES = 8


def _seen(context: ContextTypes.DEFAULT_TYPE) -> list[int]:
    if context.user_data is None:
        return []
    seen = context.user_data.setdefault(SEEN_KEY, [])
    return seen if isinstance(seen, list) else []


def _stored_first(name: str, callback: Step) -> Step:
    """The step, with its replies held until its new state and drafts are stored: after a
    crash the user's answer to the last prompt they saw is always the one expected."""

    async def step(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        seen = _seen(context)
        if update.update_id in seen:
            # Telegram sent it again: the bot died before telling Telegram it had it. Its
            # step is stored and its question was shown; doing it twice would confuse.
            log.info("update %s was handled before; not again", update.update_id)
            return None
        with holding_replies() as held:
            new_state = await callback(update, context)
        seen.append(update.update_id)
        del seen[:-SEEN_UPDATES]
        persistence = context.application.persistence
        chat, user = update.effective_chat, update.effective_user
        if isinstance(persistence, SQLitePersistence) and chat and user:
            if new_state is None:  # the same step, answered again: its drafts only
                await persistence.store_drafts(user.id, context.user_data)
            else:
                value = None if new_state == ConversationHandler.END else new_state
                await persistence.store_step(
                    name, (chat.id, user.id), value, user.id, context.user_data
                )
        await _send_held(held)
        return new_state

    step.stores_first = True  # type: ignore[attr-defined]
    step.__name__ = getattr(callback, "__name__", "step")
    step.__doc__ = callback.__doc__
    return step


async def _send_held(held: list[Callable[[], Awaitable[object]]]) -> None:
    """Every held reply, in order; a failed one does not stop the ones after it (an answer
    to a tap that came too late must not keep the next question from being shown)."""
    failed: Exception | None = None
    for call in held:
        try:
            await call()
        except BadRequest as exc:
            if "not modified" not in exc.message:
                failed = failed or exc
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
