"""What the emulated Telegram knows: the chats and their messages, the updates owed to the
bot, the bot's profile, and every call and refusal (for the tests and the page)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import bad
from playground.emulator.faults import Fault, Hold
from playground.emulator.files import StoredFile
from playground.emulator.groups import SimGroup
from playground.emulator.users import SimUser

if TYPE_CHECKING:
    from playground.emulator.methods.callbacks import Query
    from playground.emulator.updates import Poll


class ServerState:
    """The emulator's state, and what every part of it uses: finding a chat, counting the
    bot's actions in it, telling viewers that something changed."""

    def __init__(self, token: str, bot_username: str, bot_id: int, first_update_id: int) -> None:
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
        # Webhook delivery (webhook.py): where the stand-in load balancer sends updates
        # (empty: the webhook's URL), and what the bot gave with setWebhook.
        self.webhook_targets: list[str] = []
        self.webhook_secret = ""
        self.webhook_max_connections = 40
        self.webhook_deliveries: list[tuple[int, str, int | None]] = []  # id, URL, status
        self._in_delivery: set[int] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._busy_queues: set[int] = set()  # queues with an update in flight
        self._retry_at: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._round_robin = itertools.count()
        self._http: aiohttp.ClientSession | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self.faults: list[Fault] = []  # see Fault; tests append to it
        self.holds: list[Hold] = []  # see Hold; tests append to it
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

    def _known(self, user_id: int) -> SimUser:
        if user_id not in self._users:
            raise AssertionError(f"no simulated user {user_id}; create it with server.user()")
        return self._users[user_id]

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

    def _touch(self) -> None:
        """Record activity and wake everybody waiting in _settle()."""
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        if self._tick is not None and not self._tick.done():
            self._tick.set_result(None)
        self._tick = loop.create_future()

    def _record(self, chat: Chat, msg: Msg | None) -> None:
        """The bot acted in ``chat`` (``None``: answered a tap there, or left it): the
        events a wait for its reaction counts."""
        chat._events.append(msg)

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
