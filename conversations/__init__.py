"""ConversationHandler state machines, one module per flow, and what every flow shares.

A flow module holds its steps and its draft. `Flow` gives each flow, once: the one way
it asks (`prompt`), ◀ Back and Cancel (the button and /cancel), the message when it is
abandoned (its timeout), the reminder when another command comes mid-flow, and a kind
end when its draft cannot be read back. `Flow.conversation` wires them into a
persistent ConversationHandler whose steps are stored before their replies go out.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ValidationError
from telegram import InlineKeyboardButton, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.callbacks import Callback, CancelFlow, FlowName, GoBack
from bot.context import PortalContext
from bot.i18n import Translator
from bot.persistence import Deadlines, SQLitePersistence
from bot.portalbot import HeldCall, holding_replies
from handlers.send import edit_in_place, keyboard, send_long

log = logging.getLogger(__name__)

Step = Callable[[Update, PortalContext], Coroutine[Any, Any, int]]  # returns the next state
Reply = Callable[[Update, PortalContext], Coroutine[Any, Any, object]]  # any callback
Handler = BaseHandler[Update, PortalContext, object]
Rows = Sequence[Sequence[InlineKeyboardButton]]
Words = Callable[[Translator], str]  # a sentence, in the caller's language
D = TypeVar("D", bound="Draft")
K = TypeVar("K", bound=Callback)

END = ConversationHandler.END
TYPED = filters.TEXT & ~filters.COMMAND  # a typed answer; a command is never one
# user_data key: flow name -> message id of the flow's open prompt, the last message it
# showed with buttons (stored, so a restart does not forget it).
PROMPTS = "prompts"


@dataclass(frozen=True)
class Flows:
    """What every flow needs from the application: its timeout and the deadlines of
    conversations restored after a restart."""

    timeout: float
    deadlines: Deadlines


class Draft(BaseModel):
    """A flow's answers so far. Its fields are immutable values (str, int, bool, date, the
    vocabulary's enums), so a shallow copy is a deep one: PTB deep-copies every user's data
    after each of their updates, and copy.deepcopy of a model is ~7 times slower."""

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self.model_copy()


class NoDraft(Draft):
    """The draft of a flow that keeps none."""


@dataclass(frozen=True)
class Flow(Generic[D]):
    """One flow's shared parts. Its draft is a pydantic model kept in user_data under
    `draft_key` (bot/persistence.py stores it as JSON, and it is read back lazily here).

    `in_place`: a tapped prompt becomes the next question (the flow reads as one message);
    otherwise it loses its buttons and the next question comes below it (a practitioner's
    flows keep every answer on screen). `buttons`: the name on its ◀ Back and Cancel (a
    flow without buttons has none). `said_mid_flow`: the reminder when another command
    comes mid-flow; without it, other commands go on to their own handlers.
    """

    name: str
    draft_type: type[D]
    said_on_cancel: Words
    said_on_timeout: Words
    said_mid_flow: Words | None = None
    buttons: FlowName | None = None
    in_place: bool = True
    draft_key: str | None = None  # kept as the previous version named it: its drafts load

    # --- The draft ---------------------------------------------------------------------

    def draft(self, context: PortalContext) -> D | None:
        """The draft; None when there is none or it cannot be read back (it is dropped)."""
        data = _user_data(context)
        stored = data.get(self._key)
        if stored is None or isinstance(stored, self.draft_type):
            return stored
        try:
            draft = self.draft_type.model_validate(stored)
        except ValidationError as exc:
            log.warning("%s: a stored draft cannot be read back: %s", self.name, exc)
            data.pop(self._key, None)
            return None
        data[self._key] = draft
        return draft

    def begin(self, context: PortalContext, draft: D) -> D:
        """A new draft, in place of any other."""
        _user_data(context)[self._key] = draft
        return draft

    def drop(self, context: PortalContext) -> None:
        _user_data(context).pop(self._key, None)

    @property
    def _key(self) -> str:
        return self.draft_key or self.name

    # --- Asking --------------------------------------------------------------------------

    async def prompt(self, update: Update, text: str, rows: Rows = ()) -> None:
        """Ask (or say) `text` with these buttons: after a tap, in place of the tapped
        prompt or below it (see `in_place`); after a typed message, below that."""
        markup = keyboard(rows)
        query = update.callback_query
        if query is not None:
            await query.answer()
            if self.in_place:
                await edit_in_place(query, text, markup)
                return
            await query.edit_message_reply_markup(None)  # answered: no buttons linger
        if update.effective_chat is not None:
            await send_long(update.get_bot(), update.effective_chat.id, text, markup)

    def back_button(self, _: Translator) -> InlineKeyboardButton:
        return InlineKeyboardButton(_("◀ Back"), callback_data=GoBack(self._buttons).encode())

    def cancel_button(self, _: Translator) -> InlineKeyboardButton:
        return InlineKeyboardButton(_("Cancel"), callback_data=CancelFlow(self._buttons).encode())

    def nav(
        self, _: Translator, *, back: bool = True, extra: Sequence[InlineKeyboardButton] = ()
    ) -> list[InlineKeyboardButton]:
        """A question's last row: ◀ Back (not on the first), any `extra`, Cancel."""
        return [*([self.back_button(_)] if back else []), *extra, self.cancel_button(_)]

    @property
    def _buttons(self) -> FlowName:
        if self.buttons is None:
            raise TypeError(f"the {self.name} flow has no buttons")
        return self.buttons

    # --- The ends and the guards, the same in every flow -------------------------------

    async def cancel(self, update: Update, context: PortalContext) -> int:
        """/cancel or Cancel: drops the draft; says nothing was done."""
        self.drop(context)
        await self.prompt(update, self.said_on_cancel(context.caller._))
        return END

    async def timed_out(self, update: Update, context: PortalContext) -> int:
        """No answer within the timeout: drops the draft; says nothing was done."""
        self.drop(context)
        if update.effective_chat is not None:
            text = self.said_on_timeout(context.caller._)
            await send_long(context.bot, update.effective_chat.id, text)
        return END

    async def command_mid_flow(self, update: Update, context: PortalContext) -> None:
        """Another command mid-flow: says how to go on or stop; the question stays open."""
        if self.said_mid_flow is not None:
            await self.prompt(update, self.said_mid_flow(context.caller._))

    async def lost(self, update: Update, context: PortalContext) -> int:
        """The draft is gone or unreadable (e.g. stored by an older version): ends kindly."""
        _ = context.caller._
        self.drop(context)
        await self.prompt(
            update,
            _(
                "Sorry, I lost track of your earlier answers, so I've stopped here. Nothing "
                "was sent or created; please start again."
            ),
        )
        return END

    def buttons_expected(self, ask: Step) -> Step:
        """For a typed message where a button is the answer: a reminder, then `ask` again."""

        async def remind(update: Update, context: PortalContext) -> int:
            await self.prompt(update, context.caller._("Please choose one of the buttons."))
            return await ask(update, context)

        remind.__doc__ = f"Typed text where buttons are expected: re-asks ({ask.__name__})."
        return remind

    # --- Wiring --------------------------------------------------------------------------

    def conversation(
        self,
        flows: Flows,
        *,
        entry_points: Sequence[Handler],
        states: Mapping[int, Sequence[Handler]],
        back: Mapping[int, Step] | None = None,
        fallbacks: Sequence[Handler] = (),
    ) -> ConversationHandler[PortalContext]:
        """The flow as a persistent ConversationHandler: each state with ◀ Back to the step
        `back` names for it; then, in any state, /cancel and Cancel, the flow's own
        `fallbacks`, and the guard against other commands; its timeout; re-entry."""
        steps: dict[object, list[Handler]] = {s: list(hs) for s, hs in states.items()}
        if back:
            going_back = exactly(GoBack(self._buttons))
            for state, step in back.items():
                steps[state].append(CallbackQueryHandler(step, pattern=going_back))
        steps[ConversationHandler.TIMEOUT] = [TypeHandler(Update, self.timed_out)]
        ends: list[Handler] = [CommandHandler("cancel", self.cancel)]
        if self.buttons is not None:
            cancelling = exactly(CancelFlow(self.buttons))
            ends.append(CallbackQueryHandler(self.cancel, pattern=cancelling))
        ends += fallbacks
        if self.said_mid_flow is not None:
            ends.append(MessageHandler(filters.COMMAND, self.command_mid_flow))
        return _conversation(flows, self.name, list(entry_points), steps, ends)


def exactly(value: Callback) -> str:
    """The anchored pattern of this one button (a kind's own pattern takes all values)."""
    return "^" + re.escape(value.encode()) + r"\Z"


def tapped(update: Update, kind: type[K]) -> K | None:
    """The button tapped, as `kind`; None when the update is not exactly one of those."""
    query = update.callback_query
    return kind.parse(query.data) if query is not None else None


def typed(update: Update) -> str | None:
    """The text of a typed answer."""
    return update.effective_message.text if update.effective_message else None


def _user_data(context: PortalContext) -> dict[Any, Any]:
    data = context.user_data
    if data is None:  # every flow is per user
        raise RuntimeError("a flow's update has no user")
    return data


class RestoredTimeout(BaseHandler[Update, PortalContext, object]):
    """First in every state: a conversation restored after a restart whose deadline has
    passed ends with the flow's own timeout message, whatever the user sends."""

    def __init__(self, name: str, deadlines: Deadlines, timed_out: Reply) -> None:
        super().__init__(timed_out)
        self.name = name
        self.deadlines = deadlines

    def check_update(self, update: object) -> bool:
        if not isinstance(update, Update) or not update.effective_chat or not update.effective_user:
            return False
        key = (update.effective_chat.id, update.effective_user.id)
        return self.deadlines.stale(self.name, key)


def _conversation(
    flows: Flows,
    name: str,
    entry_points: list[Handler],
    states: dict[object, list[Handler]],
    fallbacks: list[Handler],
) -> ConversationHandler[PortalContext]:
    """A persistent, per-user, per-chat conversation whose buttons work on the latest prompt.

    per_message=False is deliberate (the flows mix typed answers and buttons), so PTB's
    construction-time hint about tracking CallbackQueryHandlers per message does not apply.
    """
    timeout = states[ConversationHandler.TIMEOUT]
    guard = RestoredTimeout(name, flows.deadlines, timeout[0].callback)
    for handler in timeout:  # a timeout has no prompt to hold
        handler.callback = _closing_prompt(name, handler.callback)
    guarded = {
        s: hs if s == ConversationHandler.TIMEOUT else [guard, *hs] for s, hs in states.items()
    }
    for state, handlers in guarded.items():
        if state != ConversationHandler.TIMEOUT:
            _store_before_replying(name, handlers)
    _store_before_replying(name, entry_points)
    _store_before_replying(name, fallbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)
        return ConversationHandler(
            entry_points,
            guarded,
            fallbacks,
            name=name,
            per_user=True,
            per_chat=True,
            per_message=False,
            persistent=True,
            conversation_timeout=flows.timeout,
            allow_reentry=True,
        )


def _answers_a_tap(call: HeldCall) -> bool:
    return getattr(call.func, "__name__", "") == "answer_callback_query"


def _store_before_replying(name: str, handlers: list[Handler]) -> None:
    for handler in handlers:
        if not getattr(handler.callback, "stores_first", False):
            handler.callback = _stored_first(name, handler.callback)


def _stored_first(name: str, callback: Reply) -> Reply:
    """The step, with its replies held until its new state and drafts are stored: after a
    crash the user's answer to the last prompt they saw is always the one expected."""

    async def step(update: Update, context: PortalContext) -> object:
        with holding_replies() as held:
            new_state = await callback(update, context)
        await _store_step(name, update, context, new_state)
        try:
            shown = await _send_held(held)
        except Exception as exc:
            # The step is stored, so PTB must take the new step too (raised, it would keep
            # the old one in memory); the user still hears that something went wrong.
            await context.application.process_error(update, exc)
            shown = []
        await _close_answered_prompt(name, update, context, new_state, shown)
        return new_state

    step.stores_first = True  # type: ignore[attr-defined]  # a mark PTB's type lacks
    step.__name__ = getattr(callback, "__name__", "step")
    step.__doc__ = callback.__doc__
    return step


async def _store_step(name: str, update: Update, context: PortalContext, new_state: object) -> None:
    """The step's new state and the user's drafts, in one transaction."""
    persistence = context.application.persistence
    chat, user = update.effective_chat, update.effective_user
    if not isinstance(persistence, SQLitePersistence) or chat is None or user is None:
        return
    if new_state is None:  # the same step, answered again: its drafts only
        await persistence.store_drafts(user.id, context.user_data)
    else:
        value = None if new_state == END else new_state
        await persistence.store_step(name, (chat.id, user.id), value, user.id, context.user_data)


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
    prompts: dict[str, int] = _user_data(context).setdefault(PROMPTS, {})
    ended = new_state == END
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


def _closing_prompt(name: str, callback: Reply) -> Reply:
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
