"""The Bot API's HTTP face: one aiohttp app on 127.0.0.1 answering /bot<token>/<method>
(each method found in the table below and run by its mixin) and /file/bot<token>/<path>.
Every call is recorded in ``calls``, every refusal in ``errors``; a planted Fault fails a
call on purpose."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from playground.emulator.errors import ApiError, bad
from playground.emulator.groups import SimGroup
from playground.emulator.methods.callbacks import CallbackMethods
from playground.emulator.methods.members import MemberMethods
from playground.emulator.methods.messages import MessageMethods
from playground.emulator.methods.profile import ProfileMethods
from playground.emulator.params import (
    JSON_FIELDS,
    chat_id_of,
    loggable,
    refuse_unknown_parameters,
)
from playground.emulator.users import SimUser


class BotAPIServer(MessageMethods, CallbackMethods, MemberMethods, ProfileMethods):
    """An in-process Bot API server on 127.0.0.1 for one bot token."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "portal_test_bot",
        bot_id: int = 123456,
        first_update_id: int = 100_001,
    ) -> None:
        super().__init__(token, bot_username, bot_id, first_update_id)
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

    # -- the simulated people and chats
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
        await self._close_webhook()
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
                self._accept(method_name, params)
                result: Any = await self._get_updates(params, request)
            else:
                method_name, fn = self._method(method_name)
                self._accept(method_name, params)
                hold = next((h for h in self.holds if h.matches(method_name, params)), None)
                if hold is not None:
                    hold.fired += 1
                    hold.reached.set()
                    await hold.opened.wait()
                result = self._call(method_name, fn, params)
            return web.json_response({"ok": True, "result": result})
        except ApiError as exc:
            if exc.record:
                self._refused(method_name, params, exc)
            return web.json_response(exc.answer(), status=exc.code)
        finally:
            for value in params.values():
                if isinstance(value, web.FileField):
                    value.file.close()
            self._inflight -= not polling
            self._touch()
            if not polling:  # a send, an edit, a refusal, a new command list...
                self._changed()

    def _method(self, name: str) -> tuple[str, Callable[[dict[str, Any]], Any]]:
        """The method's own spelling and what runs it (Telegram ignores the name's case)."""
        if name.lower() not in self._methods:
            raise ApiError(404, "Not Found: method not found")
        return self._methods[name.lower()]

    def _accept(self, method_name: str, params: dict[str, Any]) -> None:
        """Record the call; refuse it if it has a parameter the method does not take."""
        self.calls.append((method_name, loggable(params)))
        refuse_unknown_parameters(method_name, params)

    def _call(
        self, method_name: str, fn: Callable[[dict[str, Any]], Any], params: dict[str, Any]
    ) -> Any:
        """Run the method, unless a test planted a fault for this call."""
        fault = next((f for f in self.faults if f.matches(method_name, params)), None)
        if fault is not None:
            fault.fired += 1
            if fault.deliver:
                fn(params)
            if fault.then is not None:
                fault.then()
            # Injected by the test, not a request Telegram would refuse.
            raise ApiError(
                fault.code, fault.description, record=False, retry_after=fault.retry_after
            )
        result = fn(params)
        if self.after_call is not None:
            self.after_call(method_name, params)
        return result

    def _refused(self, method_name: str, params: dict[str, Any], exc: ApiError) -> None:
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
