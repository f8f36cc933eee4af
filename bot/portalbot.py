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
callers never look at it (benchmarks/README.md, "Cost per update"). They, `clear_buttons`
and every answer to a tap go by the lean path (`PortalBot._call_lean`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Defaults, ExtBot
from telegram.request import BaseRequest, RequestData
from telegram.request._requestparameter import RequestParameter  # see _ready

from bot import bidi
from bot.keyboards import Keyboard, markup_json
from bot.text import TELEGRAM_TEXT_LIMIT
from bot.updates import parse_update

if TYPE_CHECKING:
    from telegram._utils.types import (  # Bot's own annotations
        ODVInput,
        TimePeriod,
    )

JSONDict = dict[str, Any]  # as PTB's telegram._utils.types.JSONDict
P = ParamSpec("P")
R = TypeVar("R")

CAPTION_LIMIT = 1024
_LOGGER = logging.getLogger(__name__)

_LIMITS = {"answerCallbackQuery": 200}

HeldCall = functools.partial[Awaitable[Any]]  # Any: each call answers its own type
_held: contextvars.ContextVar[list[HeldCall] | None] = contextvars.ContextVar(
    "held_replies", default=None
)


def holding_replies() -> contextlib.AbstractContextManager[list[HeldCall]]:
    """Within this block, what the bot sends or edits is held in the returned list."""
    return _collecting(_held)


@contextlib.contextmanager
def _collecting(into: contextvars.ContextVar[list[HeldCall] | None]) -> Iterator[list[HeldCall]]:
    kept: list[HeldCall] = []
    token = into.set(kept)
    try:
        yield kept
    finally:
        into.reset(token)


def _hold(held: list[HeldCall], call: Callable[..., Awaitable[Any]], *args: Any) -> None:
    held.append(HeldCall(call, *args))


# The answers to taps that wait for the update's reply (bot/dispatch.py).
_after: contextvars.ContextVar[list[HeldCall] | None] = contextvars.ContextVar(
    "answers_after_reply", default=None
)


def answers_after_reply() -> contextlib.AbstractContextManager[list[HeldCall]]:
    """Within this block, answers to taps are kept in the returned list, to be sent by
    `send_answers` once the handler has replied. An answer only stops the button's
    spinner: sent first, it put a whole round trip to Telegram in front of every tap's
    reply (benchmarks/README.md, "The round trip before every tap's reply"). Sent alongside the
    reply instead, it cost 12-18% more CPU per update on loopback."""
    return _collecting(_after)


async def send_answers(kept: list[HeldCall]) -> None:
    """The answers kept, in order. A refusal ("query is too old") stops nothing: the
    reply went already."""
    for call in kept:
        try:
            await call()
        except Exception as exc:  # never in place of the handler's own error
            _LOGGER.info("a callback query was not answered: %s", type(exc).__name__)


def answers_a_tap(call: HeldCall) -> bool:
    """Whether a held call is the answer to a tap (its failure is no error)."""
    return getattr(call.func, "__name__", "") in ("answer_callback_query", "_answer_now")


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


Timeouts = dict[str, "ODVInput[float]"]  # read_timeout=... as Bot's methods take them


def _text_defaults(defaults: Defaults | None) -> JSONDict:
    """What send_message takes from Defaults for a message's text, as it goes on the wire:
    parse_mode (a ParseMode as its name) and link_preview_options (as ExtBot merges them
    into a message that passes none: Defaults' own)."""
    out: JSONDict = {}
    if defaults is None:
        return out
    parse_mode = defaults.parse_mode
    if parse_mode is not None:
        out["parse_mode"] = parse_mode.value if isinstance(parse_mode, enum.Enum) else parse_mode
    if defaults.link_preview_options is not None:
        out["link_preview_options"] = defaults.link_preview_options.to_dict()
    return out


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


def _ready(data: JSONDict) -> RequestData:
    """`data`, whose values are as they go on the wire, as PTB's BaseRequest takes it."""
    # RequestData's only way in is a list of RequestParameter, which PTB calls internal
    # (telegram.request._requestparameter; pyproject pins PTB 22): built here with the
    # values as they go on the wire, which is what from_input would have made of them.
    # A change of its fields fails every send, in every test.
    return RequestData([RequestParameter(k, v, None) for k, v in data.items()])


class PortalBot(ExtBot[None]):
    """ExtBot whose replies wait while a conversation step is being stored, and whose
    getUpdates parses each update on its own (bot/updates.py)."""

    __slots__ = ("_polling", "_text_defaults")

    def __init__(self, token: str, *, get_updates_request: BaseRequest, **kwargs: Any) -> None:
        super().__init__(token, get_updates_request=get_updates_request, **kwargs)
        self._polling = get_updates_request
        self._text_defaults = _text_defaults(self.defaults)

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
        if isinstance(seconds, float) and seconds.is_integer():
            seconds = int(seconds)  # as PTB sends a timedelta of whole seconds
        # As Bot.get_updates: a long poll may take its timeout on top of the read timeout,
        # which is the poll's request's own unless one was passed (any DefaultValue: none).
        if read_timeout is None or isinstance(read_timeout, int | float):
            base = read_timeout or 0
        else:
            base = self._polling.read_timeout or 0
        given = {
            "offset": offset,
            "limit": limit,
            "timeout": seconds,
            "allowed_updates": None if allowed_updates is None else list(allowed_updates),
        }
        params = {**(api_kwargs or {}), **{k: v for k, v in given.items() if v is not None}}
        # Straight to the poll's own request, as Bot._do_post sends getUpdates (never through
        # the rate limiter): do_api_request would first pass the four values through PTB's
        # preparation for any call, and warn that get_updates exists, on every poll.
        raw = await self._polling.post(
            f"{self.base_url}/getUpdates",
            _ready(params),
            read_timeout=base + (seconds or 0),
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if not isinstance(raw, list):
            raise TelegramError(f"getUpdates answered {type(raw).__name__}, not a list")
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
        self,
        callback_query_id: str,
        text: str | None = None,
        show_alert: bool | None = None,
        url: str | None = None,
        cache_time: TimePeriod | None = None,
        *,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
        rate_limit_args: None = None,
    ) -> bool:
        """PTB's (every tap's `query.answer()` comes here), by the lean path and held
        within a step as every reply is."""
        _note_answer(callback_query_id)
        timeouts: Timeouts = {
            "read_timeout": read_timeout,
            "write_timeout": write_timeout,
            "connect_timeout": connect_timeout,
            "pool_timeout": pool_timeout,
        }
        if api_kwargs or rate_limit_args is not None or not isinstance(cache_time, int | None):
            # What the lean path does not spell out goes PTB's way.
            return await self._answer(
                callback_query_id,
                text,
                show_alert,
                url,
                cache_time,
                api_kwargs=api_kwargs,
                rate_limit_args=rate_limit_args,
                **timeouts,
            )
        given: JSONDict = {"callback_query_id": callback_query_id, "text": text, "url": url}
        given |= {"show_alert": show_alert, "cache_time": cache_time}
        data = {key: value for key, value in given.items() if value is not None}
        held = _held.get()
        if held is not None:
            _hold(held, self._answer_now, data, timeouts)
            return None  # type: ignore[return-value]  # held: the answer comes after the step
        kept = _after.get()
        if kept is not None:
            _hold(kept, self._answer_now, data, timeouts)
            return True  # as Telegram answers: sent once the handler has replied
        return await self._answer_now(data, timeouts)

    async def _answer_now(self, data: JSONDict, timeouts: Timeouts) -> bool:
        result: bool = await self._call_lean("answerCallbackQuery", data, timeouts)
        return result

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
        data = self._text_data({"chat_id": chat_id}, text, reply_markup)
        result: JSONDict = await self._call_lean("sendMessage", data)
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
        data = self._text_data({"chat_id": chat_id, "message_id": message_id}, text, reply_markup)
        result: JSONDict | bool = await self._call_lean("editMessageText", data)
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
        data: JSONDict = {"chat_id": chat_id, "message_id": message_id}
        result: JSONDict | bool = await self._call_lean("editMessageReplyMarkup", data)
        return result

    def _text_data(self, data: JSONDict, text: str, reply_markup: Keyboard | None) -> JSONDict:
        # What send_message would take from Defaults (parse_mode, link_preview_options).
        data |= self._text_defaults
        data["text"] = text
        if reply_markup is not None:
            data["reply_markup"] = reply_markup
        return data

    # --- The lean path --------------------------------------------------------------------

    async def _call_lean(
        self, endpoint: str, data: JSONDict, timeouts: Timeouts | None = None
    ) -> Any:
        """A call whose parameters are ready for the wire (no None, no DefaultValue, no
        object but a keyboard), made without PTB's preparation for any call: Bot._post's
        Defaults pass over every parameter (ExtBot._insert_defaults, a LinkPreviewOptions
        merged and rebuilt per message) and RequestParameter.from_input's pass over every
        value. The hot calls (a send or edit per update, an answer per tap, ~1.8 calls an
        update) spent ~9.6% of the bot's CPU there at saturation (cProfile, section 1 of
        benchmarks/README.md); this path saves 3-7% of the CPU per update (three sets of
        three interleaved pairs at saturation, 200 users: -7.4%, -2.7%, -5.1%).

        What stays as on PTB's way: the last touches every call gets (`_finish`), the
        rate limiter as ExtBot._do_post calls it (a RetryAfter waited out and retried),
        and BaseRequest.post, which turns each refusal into PTB's TelegramError."""
        self._finish(endpoint, data)
        kwargs: Timeouts = timeouts or {}
        limiter = self.rate_limiter
        if limiter is None:
            return await self._post_ready(endpoint, data, **kwargs)
        return await limiter.process_request(
            callback=self._post_ready,
            args=(endpoint, data),
            kwargs=dict(kwargs),
            endpoint=endpoint,
            data=data,
            rate_limit_args=None,
        )

    async def _post_ready(
        self,
        endpoint: str,
        data: JSONDict,
        *,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> Any:
        _LOGGER.debug("Calling Bot API endpoint `%s`", endpoint)  # not its text: health data
        return await self.request.post(
            f"{self.base_url}/{endpoint}",
            _ready(data),
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )

    def _finish(self, endpoint: str, data: JSONDict) -> None:
        """The last touches every call gets, on PTB's way (`_post`) or the lean one."""
        # PTB builds every send and edit with a parse_mode slot that Defaults then fills,
        # editMessageReplyMarkup included, which has no such parameter. A request with no
        # text or caption has nothing to parse: it goes without one.
        if data.get("text") is None and data.get("caption") is None:
            data.pop("parse_mode", None)
        self._lay_out_right_to_left(endpoint, data)
        markup = data.get("reply_markup")
        if type(markup) is Keyboard:  # ours (bot/keyboards.py); PTB encodes its own
            data["reply_markup"] = markup_json(markup)

    # Coupled to PTB's internals on purpose: Bot._post (protected; pyproject pins PTB 22)
    # is the one point every call's parameters pass, for every transport, before Defaults
    # fill them in and they are encoded. No public hook sees them there: a BaseRequest gets
    # them encoded, on one transport only, and do_api_request makes a call rather than
    # seeing each one. If PTB stopped calling it, tests/test_rtl.py would fail, and so
    # would tests/test_portalbot.py's edit_message_reply_markup (the emulator refuses
    # parse_mode there). The hot calls skip it: see _call_lean.
    async def _post(
        self, endpoint: str, data: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        # A call's api_kwargs, which Bot._post merges into data: merged here, they get the
        # same treatment as everyone else's.
        extra = kwargs.pop("api_kwargs", None)
        if extra:
            data = {**(data or {}), **extra}
        if data is not None:
            self._finish(endpoint, data)
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
