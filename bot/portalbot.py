"""The bot's Bot: PTB's ExtBot, plus replies that can wait until a step is stored.

A conversation step must be stored before its prompt is seen: if the bot died between
showing the next question and storing that it asked it, the user's answer would be
refused after the restart. So while a step runs (conversations/__init__.py), what it says
is held and goes out right after the step is stored. Holding is by context variable, so
it covers exactly the one update being handled, however its handler reaches the bot
(`message.reply_text`, `query.answer`, `context.bot.send_message`).

Every request also passes through `_post` on its way out: parse_mode goes only where
there is text to parse, a right-to-left message gets its last bidi touches
(bot/bidi.py), and a Keyboard (bot/keyboards.py) becomes the Bot API's JSON.

`send_text` and `edit_text` send and edit without turning the answer into a `Message`:
PTB builds one out of every message the Bot API sends back, keyboard and all, and most
callers never look at it (benchmarks/README.md, "Cost per update").
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import ExtBot
from telegram.request import BaseRequest
from telegram.warnings import PTBUserWarning

from bot import bidi
from bot.keyboards import Keyboard, markup_json
from bot.text import TELEGRAM_TEXT_LIMIT
from bot.updates import parse_update

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput  # Bot.get_updates' own annotation

JSONDict = dict[str, Any]  # as PTB's telegram._utils.types.JSONDict
P = ParamSpec("P")
R = TypeVar("R")

CAPTION_LIMIT = 1024

# Bot.do_api_request advises Bot.send_message and the like for these endpoints;
# PortalBot.send_text, edit_text and clear_buttons call them through it on purpose, for
# the raw answer (pyproject.toml ignores the advice in the tests too).
warnings.filterwarnings(
    "ignore",
    r"Please use 'Bot\.(sendMessage|editMessageText|editMessageReplyMarkup)'",
    PTBUserWarning,
)
_LIMITS = {"answerCallbackQuery": 200}

HeldCall = functools.partial[Awaitable[Any]]  # Any: each call answers its own type
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


def _hold(held: list[HeldCall], call: Callable[..., Awaitable[Any]], *args: Any) -> None:
    held.append(HeldCall(call, *args))


@contextlib.contextmanager
def replies_now() -> Iterator[None]:
    """Within this block nothing is held: the outbox's sends need their answers."""
    token = _held.set(None)
    try:
        yield
    finally:
        _held.reset(token)


def _holdable(
    method: Callable[Concatenate[ExtBot[None], P], Awaitable[R]],
) -> Callable[Concatenate[PortalBot, P], Coroutine[Any, Any, R]]:
    async def call(self: PortalBot, /, *args: P.args, **kwargs: P.kwargs) -> R:
        held = _held.get()
        if held is None:
            return await method(self, *args, **kwargs)
        held.append(HeldCall(method, self, *args, **kwargs))
        # No handler inside a step uses what a send returns: None stands in for it.
        return None  # type: ignore[return-value]  # held: the answer comes after the step

    functools.update_wrapper(call, method)
    return call


# The callback queries answered (or about to be) while handling the current update.
_answered: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "answered_queries", default=None
)


def answered_here(query_id: str) -> bool:
    """True when this update has answered (or held an answer to) that query: Telegram
    takes one answer per query, so an error message must then go as a message."""
    return query_id in (_answered.get() or ())


def _note_answer(query_id: object) -> None:
    ids = _answered.get()
    if ids is None:
        ids = set()
        _answered.set(ids)
    ids.add(str(query_id))


class BotAPIUnusable(Exception):
    """The Bot API cannot be used with these settings (a rejected token, no connection):
    one line for the operator, with the token masked."""


def mask_token(token: str) -> str:
    """'123456:ABC…' -> '123456:***': the bot's id, never the secret part."""
    bot_id, colon, _secret = token.partition(":")
    return f"{bot_id}:***" if colon and bot_id.isdigit() else "***"


def describe_failure(exc: TelegramError, token: str, base_url: str) -> str:
    """Why the Bot API could not be used, in one line without the token."""
    while isinstance(exc.__cause__, TelegramError):  # PTB rewords getMe's 401, token and all
        exc = exc.__cause__
    if isinstance(exc, InvalidToken):
        line = (
            f"Telegram rejected the token {mask_token(token)} ({exc.message}); "
            "check PORTAL_BOT_TOKEN (from @BotFather)"
        )
    elif isinstance(exc, NetworkError):  # refused, unreachable, timed out
        line = (
            f"cannot reach the Bot API at {base_url} ({exc.message}); check the network "
            "and PORTAL_API_BASE_URL"
        )
    else:
        line = f"the Bot API at {base_url} refused the bot: {exc.message}"
    return " ".join(line.replace(token, mask_token(token)).split()) if token else line


class PortalBot(ExtBot[None]):
    """ExtBot whose replies wait while a conversation step is being stored, and whose
    getUpdates parses each update on its own (bot/updates.py)."""

    __slots__ = ("_poll_read_timeout",)

    def __init__(self, token: str, *, get_updates_request: BaseRequest, **kwargs: Any) -> None:
        super().__init__(token, get_updates_request=get_updates_request, **kwargs)
        self._poll_read_timeout = get_updates_request.read_timeout or 0

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: int | dt.timedelta | None = None,  # noqa: ASYNC109 - the Bot API's own
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
        # As Bot.get_updates: a long poll may take its timeout on top of the read timeout,
        # which is the poll's request's own unless one was passed (any DefaultValue: none).
        if read_timeout is None or isinstance(read_timeout, int | float):
            base = read_timeout or 0
        else:
            base = self._poll_read_timeout
        raw = await self.do_api_request(
            "getUpdates",
            api_kwargs={
                **(api_kwargs or {}),
                "offset": offset,
                "limit": limit,
                "timeout": timeout,  # a timedelta is sent in seconds, as by get_updates
                "allowed_updates": allowed_updates,
            },
            read_timeout=base + (seconds or 0),
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        updates = tuple(u for u in (parse_update(data, self) for data in raw) if u is not None)
        for update in updates:
            self.insert_callback_data(update)
        return updates

    getUpdates = get_updates

    async def initialize(self) -> None:
        """PTB's (which checks the token with getMe), but a token Telegram rejects or a Bot
        API out of reach ends start-up with BotAPIUnusable, one line, rather than
        PTB's tracebacks (which show the token), and with the HTTP sessions closed."""
        try:
            await super().initialize()
        except TelegramError as exc:
            await self.shutdown()
            base = self.base_url.removesuffix(self.token)
            raise BotAPIUnusable(describe_failure(exc, self.token, base)) from None

    send_message = _holdable(ExtBot.send_message)
    send_photo = _holdable(ExtBot.send_photo)
    edit_message_text = _holdable(ExtBot.edit_message_text)
    edit_message_reply_markup = _holdable(ExtBot.edit_message_reply_markup)
    _answer = _holdable(ExtBot.answer_callback_query)

    async def answer_callback_query(
        self, callback_query_id: str, *args: Any, **kwargs: Any
    ) -> bool:
        _note_answer(callback_query_id)
        return await self._answer(callback_query_id, *args, **kwargs)

    delete_message = _holdable(ExtBot.delete_message)

    async def send_text(
        self, chat_id: int, text: str, reply_markup: Keyboard | None = None
    ) -> JSONDict | None:
        """send_message, answered with the Bot API's raw message (a dict), not a Message.
        Within a step it is held as send_message is, and answers None as it does: the
        step's replay reads the raw answer (conversations/__init__.py)."""
        held = _held.get()
        if held is not None:
            _hold(held, self._send_text_now, chat_id, text, reply_markup)
            return None
        return await self._send_text_now(chat_id, text, reply_markup)

    async def _send_text_now(
        self, chat_id: int, text: str, reply_markup: Keyboard | None
    ) -> JSONDict:
        call = self._text_call(text, reply_markup)
        result: JSONDict = await self.do_api_request("sendMessage", {"chat_id": chat_id, **call})
        return result

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        reply_markup: Keyboard | None = None,
    ) -> JSONDict | bool | None:
        """edit_message_text, answered with the raw message (or True), as send_text is."""
        held = _held.get()
        if held is not None:
            _hold(held, self._edit_text_now, chat_id, message_id, text, reply_markup)
            return None
        return await self._edit_text_now(chat_id, message_id, text, reply_markup)

    async def _edit_text_now(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        reply_markup: Keyboard | None,
    ) -> JSONDict | bool:
        call = self._text_call(text, reply_markup)
        result: JSONDict | bool = await self.do_api_request(
            "editMessageText", {"chat_id": chat_id, "message_id": message_id, **call}
        )
        return result

    async def clear_buttons(self, chat_id: int, message_id: int) -> JSONDict | bool | None:
        """edit_message_reply_markup without a markup (the message's buttons go), answered
        and held as edit_text is."""
        held = _held.get()
        if held is not None:
            _hold(held, self._clear_buttons_now, chat_id, message_id)
            return None
        return await self._clear_buttons_now(chat_id, message_id)

    async def _clear_buttons_now(self, chat_id: int, message_id: int) -> JSONDict | bool:
        result: JSONDict | bool = await self.do_api_request(
            "editMessageReplyMarkup", {"chat_id": chat_id, "message_id": message_id}
        )
        return result

    def _text_call(self, text: str, reply_markup: Keyboard | None) -> JSONDict:
        # do_api_request leaves Defaults out: what send_message would take from them.
        defaults = self.defaults
        return {
            "text": text,
            "reply_markup": reply_markup,
            "parse_mode": defaults.parse_mode if defaults else None,
            "link_preview_options": defaults.link_preview_options if defaults else None,
        }

    # Coupled to PTB's internals on purpose: Bot._post (protected; pyproject pins PTB 22)
    # is the one point every call's parameters pass, for every transport, before Defaults
    # fill them in and they are encoded. No public hook sees them there: a BaseRequest gets
    # them encoded, on one transport only, and do_api_request makes a call rather than
    # seeing each one. If PTB stopped calling it, tests/test_rtl.py would fail, and so
    # would every tap that edits only a keyboard (the emulator refuses parse_mode there).
    async def _post(
        self, endpoint: str, data: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        # do_api_request (send_text, edit_text, getUpdates) passes its parameters as
        # api_kwargs, which Bot._post merges into data: merged here, they get the same
        # treatment as everyone else's.
        extra = kwargs.pop("api_kwargs", None)
        if extra:
            data = {**(data or {}), **extra}
        # PTB builds every send and edit with a parse_mode slot that Defaults then fills,
        # editMessageReplyMarkup included, which has no such parameter. A request with no
        # text or caption has nothing to parse: it goes without one.
        if data is not None and data.get("text") is None and data.get("caption") is None:
            data.pop("parse_mode", None)
        if data is not None:
            self._lay_out_right_to_left(endpoint, data)
            markup = data.get("reply_markup")
            if type(markup) is Keyboard:  # ours (bot/keyboards.py); PTB encodes its own
                data["reply_markup"] = markup_json(markup)
        return await super()._post(endpoint, data, *args, **kwargs)

    def _lay_out_right_to_left(self, endpoint: str, data: dict[str, Any]) -> None:
        """The last word on a right-to-left message: every line laid out right to left
        (bot/bidi.py), unless that would make it too long."""
        key = "caption" if data.get("caption") is not None else "text"
        text = data.get(key)
        if not isinstance(text, str) or not bidi.reads_right_to_left(text):
            return
        parse_mode = data.get("parse_mode")
        if parse_mode is not None and not isinstance(parse_mode, str):  # Defaults' to fill
            parse_mode = self.defaults.parse_mode if self.defaults else None
        html = endpoint != "answerCallbackQuery" and str(parse_mode).upper() == "HTML"
        laid_out = bidi.right_to_left(text, html=html)
        limit = _LIMITS.get(endpoint, TELEGRAM_TEXT_LIMIT) if key == "text" else CAPTION_LIMIT
        if len(laid_out) <= limit or len(text) > limit:
            data[key] = laid_out
