"""Conversations: one module per flow, and what every flow shares.

A flow module holds its steps and its draft. `Flow` gives each flow, once: the one way
it asks (`prompt`), ◀ Back and Cancel (the button and /cancel), the message when it is
abandoned (its timeout), the reminder when another command comes mid-flow, and a kind
end when its draft cannot be read back. `Flow.conversation` wires them into a
`Conversation`, whose steps are stored before their replies go out.

Why a conversation layer of our own, and not PTB's ConversationHandler: any worker must
be able to take any update (issue #19), so a conversation's state has to be read from the
database for the update being handled. ConversationHandler keeps its states in memory,
loaded once from a persistence object at start-up, and offers no public way to read them
again per update (nor to time out across processes: its timeouts are jobs in one
process's JobQueue); only patching its private attributes would change that. So
`Conversation` is a `BaseHandler` subclass (PTB's documented extension point) with
ConversationHandler's shape and the semantics the flows rely on:

- states are named int constants; each state has its handlers, one short callback each,
  returning the next state; END (-1) ends the conversation, None stays in the state;
- per user and per chat: the conversation's key is (chat, user);
- entry points are checked first, also mid-flow (`allow_reentry=True`: starting a flow
  again starts it afresh), then the state's handlers in order, then the fallbacks; the
  first whose own `check_update` (filters, patterns) matches takes the update, and a
  state's handlers only ever see updates in that state;
- channel posts, and taps on inline messages (no chat), are not conversations;
- every handled update restarts the timeout: a conversation's deadline is its last step
  plus PORTAL_CONVERSATION_TIMEOUT. Its state and step time are stored (bot/userstate.py);
  an update that comes after the deadline, or the timed job on any worker
  (conversations/timeouts.py), ends it with the flow's timeout message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from pydantic import BaseModel, ValidationError
from telegram import Bot, CallbackQuery, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import userstate
from bot.callbacks import Callback, CancelFlow, FlowName, GoBack
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button
from bot.portalbot import HeldCall, PortalBot, answers_a_tap, holding_replies
from bot.userstate import Place
from handlers.send import edit_in_place, keyboard, send_long

log = logging.getLogger(__name__)

Step = Callable[[Update, PortalContext], Coroutine[Any, Any, int]]  # returns the next state
Reply = Callable[[Update, PortalContext], Coroutine[Any, Any, object]]  # any callback
Handler = BaseHandler[Update, PortalContext, object]
Rows = Sequence[Sequence[Button]]
Words = Callable[[Translator], str]  # a sentence, in the caller's language
D = TypeVar("D", bound="Draft")
K = TypeVar("K", bound=Callback)

END = -1  # as ConversationHandler.END: the conversation is over
TYPED = filters.TEXT & ~filters.COMMAND  # a typed answer; a command is never one
# user_data key: flow name -> message id of the flow's open prompt, the last message it
# showed with buttons (stored, so a restart does not forget it).
PROMPTS = "prompts"
# user_data key: the language of the user's last step in a flow, for the timeout message
# a worker sends on its own (conversations/timeouts.py).
FLOW_LANGUAGE = "flow_language"
# Every flow, by name: for the words of its timeout, and to find its draft.
FLOWS: dict[str, Flow[Any]] = {}


@dataclass(frozen=True)
class Flows:
    """What every flow needs from the application: its timeout."""

    timeout: float


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

    def __post_init__(self) -> None:
        FLOWS[self.name] = self

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
    def key(self) -> str:
        """Where its draft is kept in user_data."""
        return self.draft_key or self.name

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
            await _clear_tapped(query)  # answered: no buttons linger
        if update.effective_chat is not None:
            await send_long(update.get_bot(), update.effective_chat.id, text, markup)

    def back_button(self, _: Translator) -> Button:
        return Button(_("◀ Back"), data=GoBack(self._buttons).encode())

    def cancel_button(self, _: Translator) -> Button:
        return Button(_("Cancel"), data=CancelFlow(self._buttons).encode())

    def nav(
        self, _: Translator, *, back: bool = True, extra: Sequence[Button] = ()
    ) -> list[Button]:
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

    async def timed_out(self, context: PortalContext, chat_id: int) -> None:
        """No answer within the timeout (seen when the user came back): drops the draft and
        the open prompt's buttons; says nothing was done."""
        self.drop(context)
        await send_long(context.bot, chat_id, self.said_on_timeout(context.caller._))
        old = _user_data(context).get(PROMPTS, {}).pop(self.name, None)
        if isinstance(old, int):
            await remove_buttons(context.bot, chat_id, old)

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
    ) -> Conversation:
        """The flow as a Conversation: each state with ◀ Back to the step `back` names for
        it; then, in any state, /cancel and Cancel, the flow's own `fallbacks`, and the
        guard against other commands. (Its timeout is the application's, `flows`.)"""
        steps: dict[int, list[Handler]] = {s: list(hs) for s, hs in states.items()}
        if back:
            going_back = exactly(GoBack(self._buttons))
            for state, step in back.items():
                steps[state].append(CallbackQueryHandler(step, pattern=going_back))
        ends: list[Handler] = [CommandHandler("cancel", self.cancel)]
        if self.buttons is not None:
            cancelling = exactly(CancelFlow(self.buttons))
            ends.append(CallbackQueryHandler(self.cancel, pattern=cancelling))
        ends += fallbacks
        if self.said_mid_flow is not None:
            ends.append(MessageHandler(filters.COMMAND, self.command_mid_flow))
        return Conversation(self.name, list(entry_points), steps, ends)


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


class _Match(NamedTuple):
    """Which of a conversation's handlers takes an update, in which chat."""

    chat_id: int
    handler: Handler
    check: object


class Conversation(BaseHandler[Update, PortalContext, None]):
    """A per-user, per-chat conversation whose state is the user's stored state for this
    update (bot/userstate.py), and whose steps are stored before their replies go out:
    after a crash the user's answer to the last prompt they saw is always the one
    expected. See the module's docstring for the semantics kept from ConversationHandler."""

    END: ClassVar[int] = END

    def __init__(
        self,
        name: str,
        entry_points: list[Handler],
        states: dict[int, list[Handler]],
        fallbacks: list[Handler],
    ) -> None:
        super().__init__(self._unused)
        self.name = name
        self.entry_points = entry_points
        self.states = states
        self.fallbacks = fallbacks

    @staticmethod
    async def _unused(update: Update, context: PortalContext) -> None:
        raise RuntimeError("a Conversation hands each update to one of its own handlers")

    def check_update(self, update: object) -> _Match | None:
        if not isinstance(update, Update):
            return None
        if update.channel_post or update.edited_channel_post:
            return None
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return None
        if update.callback_query and not update.callback_query.message:
            return None
        loaded = userstate.current()
        if loaded is None or loaded.user_id != user.id:
            return None  # the user's state was not read for this update
        place = loaded.conversations.get((self.name, chat.id))
        # Entry points first, even mid-flow: starting the flow again starts it afresh.
        candidates = [*self.entry_points]
        if place is not None:
            candidates += [*self.states.get(place.state, ()), *self.fallbacks]
        for handler in candidates:
            check = handler.check_update(update)
            if check is not None and check is not False:
                return _Match(chat.id, handler, check)
        return None

    async def handle_update(
        self,
        update: Update,
        application: Application[Any, PortalContext, Any, Any, Any, Any],
        check_result: object,
        context: PortalContext,
    ) -> None:
        """The step, with its replies held until its new state and the user's drafts are
        stored; then its replies, and its answered prompt loses its buttons."""
        assert isinstance(check_result, _Match)
        loaded = userstate.current()
        assert loaded is not None  # check_update found it
        stop = False
        with holding_replies() as held:
            try:
                new_state = await check_result.handler.handle_update(
                    update, application, check_result.check, context
                )
            except ApplicationHandlerStop as exc:
                new_state, stop = exc.state, True
        self._step(loaded, check_result.chat_id, new_state, context)
        await userstate.store(context)
        try:
            shown = await _send_held(held)
        except Exception as exc:
            # The step is stored and goes on; the user still hears that something went wrong.
            await application.process_error(update, exc)
            shown = []
        await _close_answered_prompt(self.name, update, context, new_state, shown)
        if stop:
            raise ApplicationHandlerStop

    def _step(
        self, loaded: userstate.UserState, chat_id: int, new_state: object, context: PortalContext
    ) -> None:
        """The conversation's new state; any step, even one that stays, restarts its timeout."""
        at = (self.name, chat_id)
        if new_state == END:
            loaded.conversations.pop(at, None)
            return
        if isinstance(new_state, int) and not isinstance(new_state, bool):
            loaded.conversations[at] = Place(new_state, userstate.now_ms())
        elif new_state is None and at in loaded.conversations:
            loaded.conversations[at] = Place(loaded.conversations[at].state, userstate.now_ms())
        else:
            return
        loaded.data[FLOW_LANGUAGE] = context.caller._.language


class Shown(NamedTuple):
    """A message a step's reply sent or edited: its id, and whether it has buttons."""

    message_id: int
    asking: bool


def _shown(result: object) -> Shown | None:
    """What a held call put on screen, from its answer: the Bot API's raw message
    (PortalBot's send_text, edit_text, clear_buttons) or PTB's Message."""
    if isinstance(result, dict):
        markup = result.get("reply_markup") or {}
        return Shown(result["message_id"], bool(markup.get("inline_keyboard")))
    if isinstance(result, Message):
        markup = result.reply_markup
        return Shown(result.message_id, bool(markup and markup.inline_keyboard))
    return None  # an answer to a tap, or an edit of an inline message (True)


async def _send_held(held: list[HeldCall]) -> list[Shown]:
    """Every held reply, in order, and the answer to the tap last: it only stops the
    button's spinner, and first it put a round trip to Telegram in front of the reply
    (bot/portalbot.py answers_after_reply). A failed one does not stop the ones after it;
    a failed answer is no error. The messages sent or edited."""
    shown: list[Shown] = []
    failed: Exception | None = None
    answers = [call for call in held if answers_a_tap(call)]
    for call in [call for call in held if not answers_a_tap(call)] + answers:
        try:
            result = await call()
        except BadRequest as exc:
            if "not modified" not in exc.message and not answers_a_tap(call):
                failed = failed or exc
            continue
        except Exception as exc:
            if not answers_a_tap(call):
                failed = failed or exc
            continue
        on_screen = _shown(result)
        if on_screen is not None:
            shown.append(on_screen)
    if failed is not None:
        raise failed
    return shown


async def _close_answered_prompt(
    name: str,
    update: Update,
    context: PortalContext,
    new_state: object,
    shown: list[Shown],
) -> None:
    """A prompt's buttons answer it only while it is the flow's open question. Once the
    step has moved on (a typed answer, the next question asked below, the flow over), the
    previous prompt loses them, unless the step edited it to show what became of it."""
    prompts: dict[str, int] = _user_data(context).setdefault(PROMPTS, {})
    ended = new_state == END
    if not shown and not ended:
        return  # nothing new on screen (a repeated tap): the prompt is still the question
    edited = {m.message_id for m in shown}
    asking = [m.message_id for m in shown if m.asking]
    if not ended and not asking and new_state is None:
        return  # a reminder ("answer the question above"): the prompt stays open
    old = prompts.pop(name, None)
    if not ended and asking:
        prompts[name] = asking[-1]
    if old is not None and old not in edited and update.effective_chat is not None:
        await remove_buttons(context.bot, update.effective_chat.id, old)


async def _clear_tapped(query: CallbackQuery) -> None:
    """The tapped message's buttons go (held within a step, as every reply)."""
    bot, message = query.get_bot(), query.message
    if isinstance(bot, PortalBot) and isinstance(message, Message):
        await bot.clear_buttons(message.chat.id, message.message_id)
    else:
        await query.edit_message_reply_markup(None)


async def remove_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """A prompt's buttons, taken off once it is no longer the question."""
    try:
        if isinstance(bot, PortalBot):  # the raw answer: nobody reads the message back
            await bot.clear_buttons(chat_id, message_id)
        else:
            await bot.edit_message_reply_markup(chat_id, message_id)
    except TelegramError as exc:  # deleted, too old to edit, or no buttons left: all fine
        log.info("the buttons of an answered prompt stay: %s", exc)
