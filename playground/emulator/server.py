"""A small Telegram Bot API emulator, plus simulated users: the tests drive the bot through
it, and `python -m bot playground` puts a web page in front of it.

The real python-telegram-bot ``Application`` runs against this server over real HTTP
(``ApplicationBuilder().base_url(server.base_url)``), so every request goes through PTB's
own serialisation and error handling.  Refusals are worded the way the official Bot API
server (tdlib/telegram-bot-api) words them, so ``BadRequest`` / ``Forbidden`` /
``Conflict`` are raised by PTB exactly as in production.

Deliberate fidelity points, all taken from the Bot API server's source:

* HTML / MarkdownV2 / Markdown parsing follows tdlib's parsers, error texts included.  A
  bare ``&`` that is not an entity is kept literally (Telegram accepts ``Tom & Jerry``);
  a bare ``<`` is refused.
* Length limits count Unicode code points of the parsed text after Telegram's trimming.
* ``editMessage*`` without ``reply_markup`` removes the inline keyboard, as in Telegram.
* A private chat exists for the bot only after the user wrote to it (``/start`` or any
  update); before that, sends fail with "chat not found".
* A new getUpdates request terminates the one already waiting, which is answered with
  409 "Conflict: terminated by other getUpdates request; ...".
* Updates of a kind the bot did not ask for (``allowed_updates`` of getUpdates or
  setWebhook, kept until asked again) are dropped, as Telegram drops them.
* Groups, supergroups and channels (``SimGroup``, negative ids): members write and tap
  there, the bot is told by ``my_chat_member`` when it is added and when it leaves
  (``leaveChat``), and after leaving its requests about the chat fail with 403.

Two checks are stricter than Telegram, which lets these pass silently although the request
was not what the bot meant: a parameter the method does not take (``parse_mode`` on
``editMessageReplyMarkup``), and a ``reply_markup`` without any buttons (``{}``, an empty
``inline_keyboard``), where the bot should have sent no markup.  Both are refused with 400
and kept in ``errors`` with ``"strict": True``; the tests fail on any of them.

Every refusal is also kept in ``BotAPIServer.errors`` (method, code, description, chat,
time), so a test can assert there were none and the playground page can show a warning
when the bot breaks one of Telegram's rules.  ``revision`` grows with every change a user
could see; ``wait_change`` lets a viewer follow it without polling.
Plain text that Telegram accepts but shows wrong (an HTML escape such as ``&amp;`` in a
pop-up alert, which is never parsed) is kept in ``BotAPIServer.garbled``.

Waiting (``send`` / ``open_link`` / ``tap`` / ``tap_data`` of a SimUser or a SimGroup, and
``SimGroup.add_bot`` / ``post``): the update is queued, then the call waits until (a) the
bot fetched it with getUpdates (or Telegram dropped it, see allowed_updates), (b) at least
``expect`` bot events happened in this chat since then (a message sent, edited or deleted
there, an answerCallbackQuery for a button tapped there, or the bot leaving it), and (c)
no request was in flight or arrived for ``QUIET`` seconds, so trailing messages of the same
update are included.  It returns the bot messages created or edited meanwhile (live
objects, latest state), or raises AssertionError with the transcript on timeout.  Nothing
sleeps for a fixed time: every request wakes the waiters.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import CONFLICT, NOT_MODIFIED, QUERY_INVALID, ApiError, bad
from playground.emulator.faults import Fault
from playground.emulator.files import StoredFile, image_size
from playground.emulator.groups import SimGroup
from playground.emulator.markup import Button, Markup, parse_markup
from playground.emulator.params import (
    JSON_FIELDS,
    PARAMETERS,
    chat_id_of,
    get_bool,
    get_int,
    get_str,
    loggable,
    refuse_unknown_parameters,
)
from playground.emulator.text import Entity, format_text
from playground.emulator.users import SimUser, start_command

__all__ = [
    "PARAMETERS",
    "ApiError",
    "BotAPIServer",
    "Button",
    "Msg",
    "SimGroup",
    "SimUser",
    "start_command",
]

QUIET = 0.05
_HTML_ESCAPE = re.compile(r"&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);")
# Sent only to a bot that lists them in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


# --------------------------------------------------------------------------- chat model


@dataclass
class Query:
    user: SimUser  # who tapped: the answer (an alert) is theirs
    chat: Chat  # where the tapped message is: answering counts as the bot's action there
    answered: bool = False


class Poll:
    """One waiting getUpdates request; woken by a new update, a newer poll or stop()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: web.Request) -> None:
        self.request = request
        self.wake: asyncio.Future[None] = loop.create_future()
        self.superseded = False

    def poke(self) -> None:
        if not self.wake.done():
            self.wake.set_result(None)


# --------------------------------------------------------------------------- the server


class BotAPIServer:
    """An in-process Bot API server on 127.0.0.1 for one bot token."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "portal_test_bot",
        bot_id: int = 123456,
        first_update_id: int = 100_001,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_name = bot_username.removesuffix("_bot").replace("_", " ").title()
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.errors: list[dict[str, Any]] = []
        # Accepted as Telegram accepts them, but shown wrong: a pop-up alert is plain text,
        # so an HTML escape in it ("Tom &amp; Jerry") reaches the user as typed.
        self.garbled: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.names: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.webhook_url = ""
        self.faults: list[Fault] = []  # see Fault; tests append to it
        # Called after each Bot API call took effect, before its answer goes back: a test
        # can kill the bot there, when a message was delivered but not yet known sent.
        self.after_call: Callable[[str, dict[str, Any]], object] | None = None
        self._users: dict[int, SimUser] = {}
        self._groups: dict[int, SimGroup] = {}
        # As the bot last asked with getUpdates or setWebhook; None: Telegram's default.
        self.allowed_updates: list[str] | None = None
        self._dropped: dict[int, str] = {}  # update_id -> its kind, not in allowed_updates
        self._files: dict[str, StoredFile] = {}
        self._queries: dict[str, Query] = {}
        self._pending: list[dict[str, Any]] = []
        self._update_owner: dict[int, Chat] = {}
        self._fetch_marks: dict[int, int] = {}  # update_id -> len(owner._events) at fetch time
        self._update_ids = itertools.count(first_update_id)
        self._last_enqueued = 0
        self._last_fetched = 0
        self._counter = itertools.count(1)
        self._poll: Poll | None = None
        self._inflight = 0
        self._last_activity = 0.0
        self._tick: asyncio.Future[None] | None = None
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._stopping = False
        self.revision = 0  # grows with every change a user of the chats could see
        self._change: asyncio.Future[None] | None = None
        self._methods: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            name.lower(): (name, fn)
            for name, fn in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "editMessageText": self._edit_text,
                "editMessageCaption": self._edit_caption,
                "editMessageReplyMarkup": self._edit_markup,
                "deleteMessage": self._delete,
                "deleteMessages": self._delete_many,
                "answerCallbackQuery": self._answer,
                "setMyCommands": self._set_commands,
                "getMyCommands": self._get_commands,
                "deleteMyCommands": self._delete_commands,
                "sendChatAction": self._chat_action,
                "setChatMenuButton": self._set_menu,
                "getChatMenuButton": self._get_menu,
                "setMyName": self._set_text("name", self.names),
                "getMyName": self._get_text("name", self.names),
                "setMyDescription": self._set_text("description", self.descriptions),
                "getMyDescription": self._get_text("description", self.descriptions),
                "setMyShortDescription": self._set_text(
                    "short_description", self.short_descriptions
                ),
                "getMyShortDescription": self._get_text(
                    "short_description", self.short_descriptions
                ),
                "getFile": self._get_file,
                "leaveChat": self._leave_chat,
            }.items()
        }

    # -- lifecycle
    async def start(
        self,
        *,
        port: int = 0,
        setup: Callable[[web.Application], None] | None = None,
    ) -> None:
        """Bind 127.0.0.1 on ``port`` (0: a free one).  ``setup`` may add routes and
        middlewares to the same aiohttp application first (the playground's page)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        if setup is not None:
            setup(app)
        # handler_cancellation: a poll whose client went away must not linger and later be
        # "terminated by other getUpdates request".
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = int(self._runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        self._tick = loop.create_future()
        self._change = loop.create_future()
        self._touch()

    async def stop(self) -> None:
        self._stopping = True
        if self._poll is not None:
            self._poll.poke()
        self._changed()  # viewers waiting in wait_change() see `stopping` and leave
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self._host}:{self._port}/file/bot"

    # -- users
    def user(
        self,
        user_id: int,
        first_name: str,
        language_code: str | None = "en",
        username: str | None = None,
    ) -> SimUser:
        """Create (or return the existing) simulated user."""
        if user_id not in self._users:
            self._users[user_id] = SimUser(self, user_id, first_name, language_code, username)
        return self._users[user_id]

    def known_user(self, user_id: int) -> SimUser | None:
        return self._users.get(user_id)

    def group(self, chat_id: int, title: str, kind: str = "group") -> SimGroup:
        """Create (or return the existing) group, supergroup or channel, without the bot.
        Ids as Telegram's: a basic group's above -10**12, a supergroup's or channel's
        -100xxxxxxxxxx."""
        if chat_id not in self._groups:
            if kind not in ("group", "supergroup", "channel"):
                raise AssertionError(f"no such chat type: {kind!r}")
            if not (-(10**12) < chat_id < 0 if kind == "group" else chat_id < -(10**12)):
                raise AssertionError(f"{chat_id} is not a {kind} chat id")
            if not title:
                raise AssertionError("a group or channel has a title")
            self._groups[chat_id] = SimGroup(self, chat_id, title, kind)
        return self._groups[chat_id]

    def commands_for(self, user: SimUser) -> list[dict[str, str]]:
        """The command menu this user's Telegram app shows: the narrowest scope the bot set,
        in the user's language before the language-neutral list, as Telegram resolves it."""
        chat = json.dumps(
            {"chat_id": user.id, "type": "chat"}, sort_keys=True, separators=(",", ":")
        )
        lang = (user.language_code or "")[:2]
        for scope in (chat, '{"type":"all_private_chats"}', "default"):
            for language in ([lang] if lang else []) + [""]:
                if (scope, language) in self.commands:
                    return self.commands[(scope, language)]
        return []

    def block(self, user_id: int) -> None:
        """The user blocks the bot; Telegram then sends the bot a my_chat_member update."""
        self._set_blocked(self._known(user_id), True)

    def unblock(self, user_id: int) -> None:
        self._set_blocked(self._known(user_id), False)

    def _known(self, user_id: int) -> SimUser:
        if user_id not in self._users:
            raise AssertionError(f"no simulated user {user_id}; create it with server.user()")
        return self._users[user_id]

    def _set_blocked(self, user: SimUser, blocked: bool) -> None:
        if user.blocked == blocked:
            return
        user.blocked = blocked
        if user.started:
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            bot = self._bot_json()
            self._enqueue(
                user,
                {
                    "my_chat_member": {
                        "chat": user.chat_json(),
                        "from": user.user_json(),
                        "date": int(time.time()),
                        "old_chat_member": {"user": bot, "status": old, "until_date": 0},
                        "new_chat_member": {"user": bot, "status": new, "until_date": 0},
                    }
                },
            )

    def _bot_status(self, group: SimGroup, status: str, by: SimUser | None) -> int:
        """The bot's membership in a group changes; Telegram tells it (my_chat_member),
        naming who changed it (``None``: the bot itself, leaving)."""
        old = group.bot_status if group.bot_is_member else "left"
        group.bot_status = status
        return self._enqueue(
            group,
            {
                "my_chat_member": {
                    "chat": group.chat_json(),
                    "from": by.user_json() if by else self._bot_json(),
                    "date": int(time.time()),
                    "old_chat_member": self._member_json(group, old),
                    "new_chat_member": self._member_json(group, status),
                }
            },
        )

    def _member_json(self, group: SimGroup, status: str) -> dict[str, Any]:
        d: dict[str, Any] = {"user": self._bot_json(), "status": status}
        if status == "administrator":  # Telegram lists every right, granted or not
            rights = [
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            ]
            d |= {"can_be_edited": False, "is_anonymous": False, "can_manage_chat": True}
            d |= dict.fromkeys(rights, False)
            if group.kind == "channel":
                d |= {"can_post_messages": True, "can_edit_messages": False}
        return d

    # -- watching
    def _changed(self) -> None:
        """Something a user could see changed: wake the viewers in wait_change()."""
        self.revision += 1
        if self._change is not None and not self._change.done():
            self._change.set_result(None)
        if self._change is not None:
            self._change = asyncio.get_running_loop().create_future()

    async def wait_change(
        self,
        after: int,
        timeout: float | None = None,  # noqa: ASYNC109 - a viewer's heartbeat interval
    ) -> int:
        """Wait until ``revision`` is past ``after`` (or the timeout, or stop); the revision."""
        if self.revision == after and self._change is not None and not self._stopping:
            await asyncio.wait({self._change}, timeout=timeout)
        return self.revision

    # -- waiting
    def _touch(self) -> None:
        """Record activity and wake everybody waiting in _settle()."""
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        if self._tick is not None and not self._tick.done():
            self._tick.set_result(None)
        self._tick = loop.create_future()

    async def _settle(self, ready: Callable[[], bool], quiet: float, wait_s: float) -> bool:
        """Wait until ``ready()`` holds and no request was in flight or arrived for ``quiet``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            now = loop.time()
            delay = deadline - now
            if ready() and self._inflight == 0:
                idle = now - self._last_activity
                if idle >= quiet:
                    return True
                delay = min(delay, quiet - idle)
            if delay <= 0 or self._tick is None:
                return False
            await asyncio.wait({self._tick}, timeout=delay)

    async def wait_idle(
        self,
        quiet: float = QUIET,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> None:
        """Wait until every update was fetched and the bot made no request for ``quiet``."""
        if not await self._settle(
            lambda: self._last_fetched >= self._last_enqueued, quiet, timeout
        ):
            raise AssertionError(
                f"server not idle after {timeout}s: {self._inflight} requests in flight, "
                f"updates up to {self._last_enqueued} enqueued, up to {self._last_fetched} "
                "fetched"
            )

    async def _await_reaction(
        self, chat: Chat, update_id: int, expect: int, wait_s: float, action: str
    ) -> list[Msg]:
        errors_before = len(self.errors)

        def ready() -> bool:
            mark = self._fetch_marks.get(update_id)
            return mark is not None and len(chat._events) - mark >= expect

        if not await self._settle(ready, QUIET, wait_s):
            mark = self._fetch_marks.get(update_id)
            if update_id in self._dropped:
                got = (
                    f"Telegram dropped the update: {self._dropped[update_id]!r} is not in the "
                    f"bot's allowed_updates {self.allowed_updates}"
                )
            elif mark is None:
                got = "the bot never fetched the update"
            else:
                got = f"got {len(chat._events) - mark}"
            raise AssertionError(
                f"{action} timed out after {wait_s}s waiting for {expect} bot events ({got}); "
                f"refused requests meanwhile: {self.errors[errors_before:]}; transcript:\n"
                f"{chat.transcript()}"
            )
        seen: dict[int, Msg] = {}
        for m in chat._events[self._fetch_marks[update_id] :]:
            if m is not None and not m.deleted:
                seen.setdefault(m.message_id, m)
        return list(seen.values())

    def enqueue_raw(self, payload: dict[str, Any]) -> int:
        """Queue an update exactly as given, with the next update_id added, whether the
        bot can make sense of it or not (a field missing, a kind of update from a newer
        Bot API); its update_id. Nobody's chat waits for a reaction to it."""
        return self._enqueue(None, payload)

    def _enqueue(self, chat: Chat | None, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._pending.append({"update_id": update_id, **payload})
        if chat is not None:
            self._update_owner[update_id] = chat
        self._last_enqueued = update_id
        if self._poll is not None:
            self._poll.poke()
        self._touch()
        return update_id

    def _new_query(self, user: SimUser, chat: Chat) -> str:
        query_id = str(4_000_000_000_000_000_000 + next(self._counter) * 7_919 + user.id)
        self._queries[query_id] = Query(user, chat)
        return query_id

    def _press(self, user: SimUser, chat: Chat, msg: Msg, data: str) -> int:
        """``user`` taps a button with ``data`` on ``msg`` in ``chat``: a callback query."""
        chat._check_tap(user, data)
        if msg.deleted or not msg.from_bot:
            raise AssertionError(f"message #{msg.message_id} is deleted or not the bot's")
        return self._enqueue(
            chat,
            {
                "callback_query": {
                    "id": self._new_query(user, chat),
                    "from": user.user_json(),
                    "message": self._msg_json(chat, msg),
                    "chat_instance": str(-(chat.id * 7919) % 10**18),
                    "data": data,
                }
            },
        )

    async def _tap(
        self,
        user: SimUser,
        chat: Chat,
        label: str,
        message: Msg | None,
        expect: int,
        wait_s: float,
    ) -> list[Msg]:
        msg, button = chat._find_button(label, message)
        if button.callback_data is None:
            if button.url and re.search(r"(t\.me|telegram\.me)/|tg://resolve", button.url):
                return await user.open_link(button.url, expect=expect, timeout=wait_s)
            raise AssertionError(
                f"button {button.text!r} is a {button.kind} button; tapping it "
                f"sends the bot nothing\n{chat.transcript()}"
            )
        update_id = self._press(user, chat, msg, button.callback_data)
        return await self._await_reaction(chat, update_id, expect, wait_s, f"tap({label!r})")

    # -- HTTP
    async def _handle(self, request: web.Request) -> web.Response:
        method_name = request.match_info["method"]
        polling = method_name.lower() == "getupdates"
        self._inflight += not polling
        self._touch()
        params: dict[str, Any] = {}
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await self._read_params(request)
            if polling:
                method_name = "getUpdates"
                self.calls.append((method_name, loggable(params)))
                refuse_unknown_parameters(method_name, params)
                result: Any = await self._get_updates(params, request)
            else:
                if method_name.lower() not in self._methods:
                    raise ApiError(404, "Not Found: method not found")
                method_name, fn = self._methods[method_name.lower()]
                self.calls.append((method_name, loggable(params)))
                refuse_unknown_parameters(method_name, params)
                fault = next((f for f in self.faults if f.matches(method_name, params)), None)
                if fault is not None:
                    fault.fired += 1
                    if fault.deliver:
                        fn(params)
                    if fault.then is not None:
                        fault.then()
                    # Injected by the test, not a request Telegram would refuse.
                    raise ApiError(fault.code, fault.description, record=False)
                result = fn(params)
                if self.after_call is not None:
                    self.after_call(method_name, params)
            return web.json_response({"ok": True, "result": result})
        except ApiError as exc:
            if exc.record:
                self.errors.append(
                    {
                        "method": method_name,
                        "error_code": exc.code,
                        "description": exc.description,
                        "params": loggable(params),
                        "chat_id": chat_id_of(params),
                        "time": time.time(),
                        "strict": exc.strict,
                    }
                )
            return web.json_response(
                {"ok": False, "error_code": exc.code, "description": exc.description},
                status=exc.code,
            )
        finally:
            for value in params.values():
                if isinstance(value, web.FileField):
                    value.file.close()
            self._inflight -= not polling
            self._touch()
            if not polling:  # a send, an edit, a refusal, a new command list...
                self._changed()

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """Query string + JSON, urlencoded or multipart body; JSON-valued fields decoded."""
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad("can't parse JSON encoded request body") from None
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                params.update({k: form[k] for k in form})
        for key in JSON_FIELDS:
            value = params.get(key)
            if isinstance(value, str):
                try:
                    params[key] = json.loads(value) if value else None
                except ValueError:
                    what = "reply keyboard markup" if key == "reply_markup" else key
                    raise bad(f"can't parse {what} JSON object") from None
        return params

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        for f in self._files.values():
            if f.path == request.match_info["path"] and f.data is not None:
                return web.Response(body=f.data, content_type=f.mime)
        return web.Response(status=404, text="Not Found")

    # -- updates
    async def _get_updates(self, p: dict[str, Any], request: web.Request) -> list[Any]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = get_int(p, "offset") or 0
        limit = min(max(get_int(p, "limit") or 100, 1), 100)
        try:
            timeout = max(float(p.get("timeout") or 0), 0.0)
        except ValueError:
            raise bad("timeout must be a Number") from None
        self._set_allowed_updates(p)
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        loop = asyncio.get_running_loop()
        poll, old = Poll(loop, request), self._poll
        self._poll = poll
        if old is not None:  # Telegram answers the *older* request with the conflict
            old.superseded = True
            old.poke()
        deadline = loop.time() + timeout
        try:
            while True:
                if poll.superseded:
                    transport = request.transport
                    alive = transport is not None and not transport.is_closing()
                    raise ApiError(409, CONFLICT, record=alive)
                self._drop_unwanted()
                batch = self._pending[:limit]
                remaining = deadline - loop.time()
                if batch or self._stopping or remaining <= 0:
                    break
                if poll.wake.done():
                    poll.wake = loop.create_future()
                await asyncio.wait({poll.wake}, timeout=remaining)
        finally:
            if self._poll is poll:
                self._poll = None
        for update in batch:
            update_id = update["update_id"]
            owner = self._update_owner.get(update_id)
            self._fetch_marks.setdefault(update_id, len(owner._events) if owner else 0)
            self._last_fetched = max(self._last_fetched, update_id)
        return batch

    def _set_allowed_updates(self, p: dict[str, Any]) -> None:
        """Kept until the bot asks again; an empty list means Telegram's default."""
        allowed = p.get("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list) or not all(isinstance(k, str) for k in allowed):
            raise bad("can't parse allowed updates JSON object")
        self.allowed_updates = list(allowed) or None

    def _drop_unwanted(self) -> None:
        """Telegram does not keep updates of a kind the bot did not ask for; by default,
        every kind but chat_member and message reactions."""
        kept = []
        for update in self._pending:
            kind = next(k for k in update if k != "update_id")
            if self.allowed_updates is None:
                wanted = kind not in _OPT_IN_UPDATES
            else:
                wanted = kind in self.allowed_updates
            if wanted:
                kept.append(update)
            else:  # gone for good: a wait for nothing from the bot is over
                update_id = update["update_id"]
                self._dropped[update_id] = kind
                owner = self._update_owner.get(update_id)
                self._fetch_marks.setdefault(update_id, len(owner._events) if owner else 0)
                self._last_fetched = max(self._last_fetched, update_id)
        self._pending = kept

    # -- serialisation
    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _msg_json(self, chat: Chat, m: Msg) -> dict[str, Any]:
        d: dict[str, Any] = {"message_id": m.message_id}
        if m.from_bot:
            d["from"] = self._bot_json()
        elif m.sender is not None:
            d["from"] = m.sender.user_json()
        else:  # a channel's own post
            d["sender_chat"] = chat.chat_json()
        d |= {"chat": chat.chat_json(), "date": m.date}
        if m.edit_date:
            d["edit_date"] = m.edit_date
        if m.kind == "text":
            d["text"] = m.text
            if m.entities:
                d["entities"] = m.entities
        else:
            d.update(m.media or {})
            if m.caption:
                d["caption"] = m.caption
                if m.entities:
                    d["caption_entities"] = m.entities
        if m.markup_json:
            d["reply_markup"] = {"inline_keyboard": m.markup_json}
        return d

    # -- shared checks
    def _chat(self, p: dict[str, Any]) -> Chat:
        raw = p.get("chat_id")
        if raw is None or raw == "":
            raise bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            chat_id = 0  # "@username": no emulated chat has one
        chat: Chat | None = self._users.get(chat_id) if chat_id > 0 else self._groups.get(chat_id)
        if chat is None:
            raise bad("chat not found")
        chat._reachable()
        return chat

    @staticmethod
    def _check_reply(chat: Chat, p: dict[str, Any]) -> None:
        """Quoting a message that is not in the chat fails unless the bot allowed that."""
        reply = p.get("reply_parameters")
        if not isinstance(reply, dict) or reply.get("allow_sending_without_reply"):
            return
        if reply.get("message_id") is not None and not any(
            m.message_id == reply["message_id"] and not m.deleted for m in chat._all
        ):
            raise bad("message to be replied not found")

    def _message_text(self, p: dict[str, Any]) -> tuple[str, list[Entity]]:
        raw = get_str(p, "text")
        if not raw:
            raise bad("message text is empty")
        text, ents = format_text(raw, p.get("parse_mode"), p.get("entities"))
        if not text.strip():
            raise bad("text must be non-empty")
        return text, ents

    def _caption(self, p: dict[str, Any]) -> tuple[str, list[Entity]]:
        raw = get_str(p, "caption") or ""
        return format_text(raw, p.get("parse_mode"), p.get("caption_entities")) if raw else ("", [])

    def _find(self, chat: Chat, p: dict[str, Any], action: str) -> Msg:
        if p.get("inline_message_id"):
            raise bad("inline messages are not emulated")
        message_id = get_int(p, "message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        for m in chat._all:
            if m.message_id == message_id and not m.deleted:
                return m
        raise bad(f"message to {action} not found")

    def _record(self, chat: Chat, msg: Msg | None) -> None:
        chat._events.append(msg)

    def _store_file(self, data: bytes | None, name: str, mime: str, photo: bool) -> StoredFile:
        n = next(self._counter)
        prefix = "AgACAgIAAxkDAA" if photo else "BQACAgIAAxkDAA"
        f = StoredFile(f"{prefix}{n:08d}", f"AQAD{n:08d}", data, name, mime)
        if photo:
            f.width, f.height = (image_size(data) if data else None) or (800, 800)
        self._files[f.file_id] = f
        return f

    def _input_file(self, p: dict[str, Any], key: str, photo: bool) -> StoredFile:
        value = p.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value[len("attach://") :])
        if isinstance(value, web.FileField):
            data = value.file.read()
            if not data:
                raise bad("file must be non-empty")
            if photo and image_size(data) is None:
                raise bad("IMAGE_PROCESS_FAILED")
            if len(data) > (10 if photo else 50) * 1024 * 1024:
                raise ApiError(413, "Request Entity Too Large")
            return self._store_file(data, value.filename or key, value.content_type, photo)
        if isinstance(value, str) and value:
            if value in self._files:
                return self._files[value]
            if re.match(r"(?i)https?://", value):
                return self._store_file(
                    None,
                    value.rsplit("/", 1)[-1] or key,
                    "image/jpeg" if photo else "application/octet-stream",
                    photo,
                )
            raise bad("wrong file identifier/HTTP URL specified")
        raise bad(f"there is no {key} in the request")

    def _photo_json(self, f: StoredFile) -> list[dict[str, Any]]:
        full = {
            "file_id": f.file_id,
            "file_unique_id": f.unique_id,
            "width": f.width,
            "height": f.height,
        }
        if f.data is not None:
            full["file_size"] = len(f.data)
        scale = 90 / max(f.width, f.height, 1)
        if scale >= 1:
            return [full]
        thumb = {
            "file_id": f.file_id + "_s",
            "file_unique_id": f.unique_id + "s",
            "width": max(1, round(f.width * scale)),
            "height": max(1, round(f.height * scale)),
        }
        self._files.setdefault(thumb["file_id"], f)  # resending the thumbnail's id resends f
        return [thumb, full]

    def _new_bot_msg(self, chat: Chat, markup: Markup, **fields: Any) -> Msg:
        msg = Msg(
            chat._new_id(),
            from_bot=True,
            date=int(time.time()),
            buttons=markup.inline,
            markup_json=markup.inline_json,
            reply_keyboard=markup.keyboard,
            **fields,
        )
        if markup.keyboard is not None:
            chat.keyboard = markup.keyboard
        elif markup.remove_keyboard:
            chat.keyboard = None
        chat._add(msg)
        self._record(chat, msg)
        return msg

    # -- methods
    @staticmethod
    def _true(p: dict[str, Any]) -> bool:
        return True

    def _get_me(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _delete_webhook(self, p: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if get_bool(p, "drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, p: dict[str, Any]) -> bool:
        self._set_allowed_updates(p)
        self.webhook_url = get_str(p, "url") or ""
        if self._poll is not None:
            self._poll.poke()
        return True

    def _webhook_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _send_message(self, p: dict[str, Any]) -> dict[str, Any]:
        text, ents = self._message_text(p)
        markup = parse_markup(p.get("reply_markup"))
        chat = self._chat(p)
        self._check_reply(chat, p)
        if len(text) > 4096:
            raise bad("message is too long")
        chat._writable()
        msg = self._new_bot_msg(
            chat,
            markup,
            text=text,
            entities=ents,
            html=get_str(p, "text"),
            parse_mode=get_str(p, "parse_mode"),
        )
        return self._msg_json(chat, msg)

    def _send_media(self, p: dict[str, Any], key: str) -> dict[str, Any]:
        photo = key == "photo"
        f = self._input_file(p, key, photo)
        caption, ents = self._caption(p)
        markup = parse_markup(p.get("reply_markup"))
        chat = self._chat(p)
        self._check_reply(chat, p)
        if len(caption) > 1024:
            raise bad("message caption is too long")
        chat._writable()
        if photo:
            media: dict[str, Any] = {"photo": self._photo_json(f)}
        else:
            media = {
                "document": {
                    "file_id": f.file_id,
                    "file_unique_id": f.unique_id,
                    "file_name": f.name,
                    "mime_type": f.mime,
                }
            }
            if f.data is not None:
                media["document"]["file_size"] = len(f.data)
        msg = self._new_bot_msg(
            chat,
            markup,
            kind=key,
            media=media,
            caption=caption or None,
            entities=ents,
            html=get_str(p, "caption"),
            parse_mode=get_str(p, "parse_mode"),
            photo=f.data if photo else None,
            document=None if photo else f.data,
            document_name=None if photo else f.name,
        )
        return self._msg_json(chat, msg)

    def _send_photo(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_media(p, "photo")

    def _send_document(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_media(p, "document")

    def _edited(self, chat: Chat, msg: Msg, markup: Markup) -> dict[str, Any]:
        msg.buttons, msg.markup_json = markup.inline, markup.inline_json
        msg.edited += 1
        msg.edit_date = int(time.time())
        self._record(chat, msg)
        return self._msg_json(chat, msg)

    def _edit_target(self, p: dict[str, Any]) -> tuple[Chat, Msg]:
        chat = self._chat(p)
        msg = self._find(chat, p, "edit")
        if not msg.from_bot:
            raise bad("message can't be edited")
        return chat, msg

    def _edit_text(self, p: dict[str, Any]) -> dict[str, Any]:
        text, ents = self._message_text(p)
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        if msg.kind != "text":
            raise bad("there is no text in the message to edit")
        if len(text) > 4096:
            raise bad("message is too long")
        chat._writable()
        if (text, ents, markup.inline_json) == (msg.text, msg.entities, msg.markup_json):
            raise bad(NOT_MODIFIED)
        msg.text, msg.entities, msg.html = text, ents, get_str(p, "text")
        msg.parse_mode = get_str(p, "parse_mode")
        return self._edited(chat, msg, markup)

    def _edit_caption(self, p: dict[str, Any]) -> dict[str, Any]:
        caption, ents = self._caption(p)
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        if msg.kind == "text":
            raise bad("there is no caption in the message to edit")
        if len(caption) > 1024:
            raise bad("message caption is too long")
        chat._writable()
        old = (msg.caption or "", msg.entities, msg.markup_json)
        if (caption, ents, markup.inline_json) == old:
            raise bad(NOT_MODIFIED)
        msg.caption, msg.entities, msg.html = caption or None, ents, get_str(p, "caption")
        msg.parse_mode = get_str(p, "parse_mode")
        return self._edited(chat, msg, markup)

    def _edit_markup(self, p: dict[str, Any]) -> dict[str, Any]:
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        chat._writable()
        if markup.inline_json == msg.markup_json:
            raise bad(NOT_MODIFIED)
        return self._edited(chat, msg, markup)

    def _delete(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        msg = self._find(chat, p, "delete")
        msg.deleted = True
        self._record(chat, msg)
        return True

    def _delete_many(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad("message_ids must be a non-empty Array of at most 100 Integers")
        for m in chat._all:
            if m.message_id in ids and not m.deleted:
                m.deleted = True
                self._record(chat, m)
        return True

    def _leave_chat(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        if not isinstance(chat, SimGroup):
            raise bad("Can't leave private chats")
        self._record(chat, None)
        self._bot_status(chat, "left", None)  # Telegram tells the bot that it left, too
        return True

    def _answer(self, p: dict[str, Any]) -> bool:
        query = self._queries.get(get_str(p, "callback_query_id") or "")
        if query is None or query.answered:
            raise bad(QUERY_INVALID)
        text = get_str(p, "text") or None
        if text is not None and len(text) > 200:
            raise bad("MESSAGE_TOO_LONG")
        query.answered = True
        if text is not None and _HTML_ESCAPE.search(text):
            self.garbled.append({"method": "answerCallbackQuery", "text": text})
        query.user.alerts.append((text, get_bool(p, "show_alert")))
        self._record(query.chat, None)
        return True

    def _scope_key(self, p: dict[str, Any]) -> tuple[str, str]:
        lang = get_str(p, "language_code") or ""
        scope = p.get("scope")
        if scope is None or scope == {"type": "default"}:
            key = "default"
        else:
            if not isinstance(scope, dict):
                raise bad("botCommandScope must be an Object")
            kind = scope.get("type")
            if kind not in (
                "all_private_chats",
                "all_group_chats",
                "all_chat_administrators",
                "chat",
                "chat_administrators",
                "chat_member",
            ):
                raise bad("unsupported type specified")
            scope = dict(scope)
            if kind.startswith("chat"):
                scope["chat_id"] = self._chat(scope).id
            key = json.dumps(scope, sort_keys=True, separators=(",", ":"))
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise bad("invalid language code specified")
        return key, lang

    def _set_commands(self, p: dict[str, Any]) -> bool:
        raw = p.get("commands") or []
        if not isinstance(raw, list):
            raise bad("expected an Array of BotCommand")
        commands: list[dict[str, str]] = []
        for item in raw:
            if not isinstance(item, dict):
                raise bad("can't parse BotCommand: expected an Object")
            for name in ("command", "description"):
                if not isinstance(item.get(name), str):
                    raise bad(f"can't parse BotCommand: Can't find field \"{name}\"")
            command = item["command"].strip().removeprefix("/")
            description = item["description"].strip()
            if not command:
                raise bad("command must be non-empty")
            if len(command) > 32:
                raise bad("command length must not exceed 32")
            if not description:
                raise bad("command description must be non-empty")
            if len(description) > 256:
                raise bad("command description length must not exceed 256")
            commands.append({"command": command, "description": description})
        key = self._scope_key(p)
        if len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        if any(not re.fullmatch(r"[a-z0-9_]+", c["command"]) for c in commands):
            raise bad("BOT_COMMAND_INVALID")
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    def _get_commands(self, p: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands.get(self._scope_key(p), [])

    def _delete_commands(self, p: dict[str, Any]) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _chat_action(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        if not get_str(p, "action"):
            raise bad("action is empty")
        chat._writable()
        return True

    def _set_menu(self, p: dict[str, Any]) -> bool:
        chat_id = self._chat(p).id if p.get("chat_id") not in (None, "") else None
        button = p.get("menu_button") or {"type": "default"}
        self.menu_buttons[chat_id] = button
        return True

    def _get_menu(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p).id if p.get("chat_id") not in (None, "") else None
        return self.menu_buttons.get(chat_id, {"type": "default"})

    def _set_text(self, key: str, store: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
        def setter(p: dict[str, Any]) -> bool:
            lang = get_str(p, "language_code") or ""
            value = get_str(p, key) or ""
            if value:
                store[lang] = value
            else:
                store.pop(lang, None)
            if key == "name" and not lang and value:
                self.bot_name = value
            return True

        return setter

    @staticmethod
    def _get_text(key: str, store: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, str]]:
        def getter(p: dict[str, Any]) -> dict[str, str]:
            return {key: store.get(get_str(p, "language_code") or "", store.get("", ""))}

        return getter

    def _get_file(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self._files.get(get_str(p, "file_id") or "")
        if f is None or f.data is None:
            raise bad("invalid file_id")
        return {
            "file_id": f.file_id,
            "file_unique_id": f.unique_id,
            "file_size": len(f.data),
            "file_path": f.path,
        }
