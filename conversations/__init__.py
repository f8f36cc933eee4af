"""ConversationHandler state machines, one module per flow."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, ContextTypes, ConversationHandler
from telegram.warnings import PTBUserWarning

from bot.persistence import Deadlines


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
