"""ConversationHandler state machines, one module per flow."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import BaseHandler, ConversationHandler
from telegram.warnings import PTBUserWarning

from bot.context import PortalContext
from bot.persistence import Deadlines, SQLitePersistence
from bot.portalbot import HeldCall, holding_replies

log = logging.getLogger(__name__)
Step = Callable[[Update, PortalContext], Awaitable[object]]
# user_data key: flow name -> message id of the flow's open prompt, the last message it
# showed with buttons (stored, so a restart does not forget it).
PROMPTS = "prompts"


@dataclass(frozen=True)
class Flows:
    """What every flow needs from the application: its timeout and the deadlines of
    conversations restored after a restart."""

    timeout: float
    deadlines: Deadlines


class RestoredTimeout(BaseHandler[Update, PortalContext, int]):
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
        else:
            for handler in handlers:
                handler.callback = _closing_prompt(name, handler.callback)
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


def _answers_a_tap(call: HeldCall) -> bool:
    return getattr(call.func, "__name__", "") == "answer_callback_query"


def _store_before_replying(name: str, handlers: list[Any]) -> None:
    for handler in handlers:
        if not getattr(handler.callback, "stores_first", False):
            handler.callback = _stored_first(name, handler.callback)


def _stored_first(name: str, callback: Step) -> Step:
    """The step, with its replies held until its new state and drafts are stored: after a
    crash the user's answer to the last prompt they saw is always the one expected."""

    async def step(update: Update, context: PortalContext) -> object:
        with holding_replies() as held:
            new_state = await callback(update, context)
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
        try:
            shown = await _send_held(held)
        except Exception as exc:
            # The step is stored, so PTB must take the new step too (raised, it would keep
            # the old one in memory); the user still hears that something went wrong.
            await context.application.process_error(update, exc)
            shown = []
        await _close_answered_prompt(name, update, context, new_state, shown)
        return new_state

    step.stores_first = True  # type: ignore[attr-defined]
    step.__name__ = getattr(callback, "__name__", "step")
    step.__doc__ = callback.__doc__
    return step


async def _send_held(held: list[HeldCall]) -> list[Message]:
    """Every held reply, in order; a failed one does not stop the ones after it (an answer
    to a tap that came too late must not keep the next question from being shown). The
    answer to a tap only stops its spinner: its failure is no error. The messages sent or
    edited."""
    shown: list[Message] = []
    failed: Exception | None = None
    for call in held:
        try:
            result = await call()
        except BadRequest as exc:
            if "not modified" not in exc.message and not _answers_a_tap(call):
                failed = failed or exc
            continue
        except Exception as exc:
            if not _answers_a_tap(call):
                failed = failed or exc
            continue
        if isinstance(result, Message):
            shown.append(result)
    if failed is not None:
        raise failed
    return shown


async def _close_answered_prompt(
    name: str,
    update: Update,
    context: PortalContext,
    new_state: object,
    shown: list[Message],
) -> None:
    """A prompt's buttons answer it only while it is the flow's open question. Once the
    step has moved on (a typed answer, the next question asked below, the flow over), the
    previous prompt loses them, unless the step edited it to show what became of it."""
    prompts: dict[str, int] = context.user_data.setdefault(PROMPTS, {})  # type: ignore[union-attr]
    ended = new_state == ConversationHandler.END
    if not shown and not ended:
        return  # nothing new on screen (a repeated tap): the prompt is still the question
    edited = {m.message_id for m in shown}
    asking = [m.message_id for m in shown if m.reply_markup and m.reply_markup.inline_keyboard]
    if not ended and not asking and new_state is None:
        return  # a reminder ("answer the question above"): the prompt stays open
    old = prompts.pop(name, None)
    if not ended and asking:
        prompts[name] = asking[-1]
    if old is not None and old not in edited and update.effective_chat is not None:
        await _remove_buttons(context, update.effective_chat.id, old)


def _closing_prompt(name: str, callback: Step) -> Step:
    """A flow's timeout, which also takes the buttons off its last prompt."""

    async def timed_out(update: Update, context: PortalContext) -> object:
        result = await callback(update, context)
        old = context.user_data.get(PROMPTS, {}).pop(name, None) if context.user_data else None
        if old is not None and update.effective_chat is not None:
            await _remove_buttons(context, update.effective_chat.id, old)
        return result

    timed_out.__name__ = getattr(callback, "__name__", "timed_out")
    timed_out.__doc__ = callback.__doc__
    return timed_out


async def _remove_buttons(context: PortalContext, chat_id: int, message_id: int) -> None:
    try:
        await context.bot.edit_message_reply_markup(chat_id, message_id)
    except TelegramError as exc:  # deleted, too old to edit, or no buttons left: all fine
        log.info("the buttons of an answered prompt stay: %s", exc)
