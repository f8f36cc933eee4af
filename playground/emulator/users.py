"""A Telegram user in a private chat with the bot, and the deep links they open."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import BLOCKED, ApiError, bad

if TYPE_CHECKING:
    from playground.emulator.server import BotAPIServer


def start_command(url: str, bot_username: str) -> str:
    """What a Telegram client sends when a deep link to the bot is opened: "/start <payload>",
    or a bare "/start" when the payload is not one Telegram accepts.  ValueError for a link
    that is not to this bot."""
    parts = urlsplit(url if "://" in url else "https://" + url)
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.scheme == "tg" and parts.netloc == "resolve":
        target = query.get("domain", [""])[0]
    elif parts.scheme in ("http", "https") and parts.netloc in ("t.me", "telegram.me"):
        target = parts.path.strip("/").split("/")[0]
    else:
        raise ValueError(f"not a Telegram link: {url}")
    if target.lower() != bot_username.lower():
        raise ValueError(f"{url} opens @{target}, not @{bot_username}")
    payload = query.get("start", [""])[0]
    valid = re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload) is not None
    return f"/start {payload}" if valid else "/start"


class SimUser(Chat):
    """A Telegram user chatting privately with the bot (private chat id == user id)."""

    def __init__(
        self,
        server: BotAPIServer,
        user_id: int,
        first_name: str,
        language_code: str | None,
        username: str | None,
    ) -> None:
        super().__init__(server)
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.alerts: list[tuple[str | None, bool]] = []  # callback answers, in any chat
        self.started = False  # the bot may write only after the user wrote first
        self.blocked = False

    def user_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def chat_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            d["username"] = self.username
        return d

    def _name(self) -> str:
        return self.first_name

    def _reachable(self) -> None:
        if not self.started:
            raise bad("chat not found")

    def _writable(self) -> None:
        if self.blocked:
            raise ApiError(403, BLOCKED)

    def _header(self) -> str:
        state = " [blocked]" if self.blocked else ""
        return f"--- chat with {self.first_name} (id {self.id}){state} ---"

    def transcript(self) -> str:
        text = super().transcript()
        return text + (f"\ncallback answers: {self.alerts}" if self.alerts else "")

    # -- actions
    async def send(
        self,
        text: str,
        *,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """Type a message; wait for the bot's reaction (see module docs); return its messages."""
        update_id = self.type_text(text)
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"send({text!r})"
        )

    def type_text(self, text: str) -> int:
        """Type a message without waiting for the bot (the playground's Send); the update id."""
        if self.blocked:
            raise AssertionError(f"{self.first_name} has blocked the bot; unblock() first")
        msg = self._typed(self, text)
        self.started = True
        return self._server._enqueue(self, {"message": self._server._msg_json(self, msg)})

    async def open_link(
        self,
        url: str,
        *,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """Open a t.me deep link to the bot; the client sends "/start <payload>" like Telegram."""
        try:
            text = start_command(url, self._server.bot_username)
        except ValueError as exc:
            raise AssertionError(str(exc)) from None
        return await self.send(text, expect=expect, timeout=timeout)

    async def tap(
        self,
        label: str,
        *,
        message: Msg | None = None,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """Tap the inline button labelled ``label`` (exact text, else a unique substring)."""
        return await self._server._tap(self, self, label, message, expect, timeout)

    async def tap_data(
        self,
        data: str,
        *,
        message: Msg | None = None,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """Send a forged callback query with raw ``data`` from ``message`` (default: last)."""
        msg = message or self.last
        update_id = self.press(msg, data)
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"tap_data({data!r})"
        )

    def press(self, msg: Msg, data: str) -> int:
        """Send the callback query of a button without waiting (the playground's tap)."""
        return self._server._press(self, self, msg, data)

    def _check_tap(self, user: SimUser, data: str) -> None:
        if self.blocked:
            raise AssertionError(f"{self.first_name} has blocked the bot; unblock() first")
