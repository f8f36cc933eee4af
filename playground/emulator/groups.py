"""Groups, supergroups and channels, and the bot's membership in them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import ApiError, bad

if TYPE_CHECKING:
    from playground.emulator.server import BotAPIServer
    from playground.emulator.users import SimUser


class SimGroup(Chat):
    """A group, supergroup or channel.  SimUsers write and tap buttons in it; the bot gets
    every message, as an administrator (or a bot with privacy mode off) does: the stricter
    case for a bot that must not answer chatter.  The bot is in it only after add_bot();
    once it has left (leaveChat), its requests about the chat fail with 403, as Telegram's."""

    def __init__(self, server: BotAPIServer, chat_id: int, title: str, kind: str) -> None:
        super().__init__(server)
        self.id = chat_id
        self.title = title
        self.kind = kind
        self.bot_status: str | None = None  # "member", "administrator", "left"; None: never in it

    @property
    def bot_is_member(self) -> bool:
        return self.bot_status in ("member", "administrator")

    def chat_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind, "title": self.title}

    def _name(self) -> str:
        return f"{self.kind} {self.title!r}"

    def _reachable(self) -> None:
        if self.bot_status is None:
            raise bad("chat not found")
        if not self.bot_is_member:
            raise ApiError(403, f"Forbidden: bot is not a member of the {self.kind} chat")

    def _header(self) -> str:
        return f"--- {self._name()} (id {self.id}) [bot: {self.bot_status or 'never added'}] ---"

    def _needs_bot(self, action: str) -> None:
        if not self.bot_is_member:
            raise AssertionError(f"{action}: the bot is not in {self._name()}; add_bot() first")

    # -- actions
    async def add_bot(
        self,
        by: SimUser,
        *,
        admin: bool = False,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """``by`` adds the bot (as an administrator if ``admin``); Telegram tells the bot
        with a my_chat_member update.  Waits for ``expect`` bot events in this chat."""
        if self.bot_is_member:
            raise AssertionError(f"the bot is already in {self._name()}")
        if self.kind == "channel" and not admin:
            raise AssertionError("bots join a channel only as administrators")
        update_id = self._server._bot_status(self, "administrator" if admin else "member", by)
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"add_bot(by {by.first_name})"
        )

    async def send(
        self,
        user: SimUser,
        text: str,
        *,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """``user`` writes in the group; wait for the bot's reaction here, as SimUser.send."""
        update_id = self.type_text(user, text)
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"{user.first_name}: send({text!r})"
        )

    def type_text(self, user: SimUser, text: str) -> int:
        if self.kind == "channel":
            raise AssertionError("members do not write in a channel; post() there instead")
        self._needs_bot(f"send({text!r})")
        msg = self._typed(user, text)
        return self._server._enqueue(self, {"message": self._server._msg_json(self, msg)})

    async def post(
        self,
        text: str,
        *,
        expect: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """A post in a channel (signed by the channel, without a "from"): a channel_post."""
        if self.kind != "channel":
            raise AssertionError(f"{self._name()} is not a channel")
        self._needs_bot(f"post({text!r})")
        msg = self._typed(None, text)
        update_id = self._server._enqueue(self, {"channel_post": self._server._msg_json(self, msg)})
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"post({text!r})"
        )

    async def tap(
        self,
        user: SimUser,
        label: str,
        *,
        message: Msg | None = None,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """``user`` taps a button on a bot message in this group; a t.me URL button opens
        the bot in the user's private chat (and waits there)."""
        return await self._server._tap(user, self, label, message, expect, timeout)

    async def tap_data(
        self,
        user: SimUser,
        data: str,
        *,
        message: Msg | None = None,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """``user`` sends a forged callback query with raw ``data`` from ``message`` (default:
        the bot's last message here); waits for the bot's reaction in this group."""
        msg = message or self.last
        update_id = self.press(user, msg, data)
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"{user.first_name}: tap_data({data!r})"
        )

    def press(self, user: SimUser, msg: Msg, data: str) -> int:
        """``user``'s callback query from a button here, without waiting."""
        return self._server._press(user, self, msg, data)

    def _check_tap(self, user: SimUser, data: str) -> None:
        self._needs_bot(f"{user.first_name}: tap({data!r})")
