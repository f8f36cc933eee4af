"""A chat as its members see it: its messages, edited in place, and the bot's actions in it."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.emulator.markup import Button
from playground.emulator.text import Entity

if TYPE_CHECKING:
    from playground.emulator.server import BotAPIServer
    from playground.emulator.users import SimUser


@dataclass(eq=False)
class Msg:
    """One message of a chat, as its members see it (edited in place, Telegram-style)."""

    message_id: int
    from_bot: bool
    text: str = ""  # plain text: tags stripped, entities unescaped ("" for media messages)
    html: str | None = None  # raw text / caption exactly as the bot sent it
    parse_mode: str | None = None
    photo: bytes | None = None
    caption: str | None = None
    buttons: list[list[Button]] = field(default_factory=list)
    reply_keyboard: list[list[str]] | None = None
    edited: int = 0
    deleted: bool = False
    kind: str = "text"  # "text", "photo" or "document"
    document: bytes | None = None
    document_name: str | None = None
    entities: list[Entity] = field(default_factory=list)  # of the text, or of the caption
    date: int = 0
    edit_date: int | None = None
    media: dict[str, Any] | None = None  # the "photo"/"document" JSON Telegram returns
    markup_json: list[list[dict[str, Any]]] | None = None
    # Who wrote it (None: the bot, or a channel's own post).
    sender: SimUser | None = field(default=None, repr=False)

    @property
    def labels(self) -> list[str]:
        """Texts of all inline buttons, row by row."""
        return [b.text for row in self.buttons for b in row]

    @property
    def content(self) -> str:
        """What the user reads: the text, or the caption of a media message."""
        return self.text if self.kind == "text" else self.caption or ""


def command_entities(text: str) -> list[Entity]:
    """The bot_command entity a Telegram client marks on a message that starts with one."""
    command = re.match(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])", text)
    if not command:
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(command.group())}]


class Chat:
    """One chat as its members see it: its messages (edited in place), its reply keyboard,
    and the bot's actions in it, which the waiting helpers count."""

    id: int

    def __init__(self, server: BotAPIServer) -> None:
        self.keyboard: list[list[str]] | None = None  # reply keyboard currently shown
        self._server = server
        self._all: list[Msg] = []
        # The bot's actions in this chat: a message sent, edited or deleted; None for an
        # answered callback query or the bot leaving the chat.
        self._events: list[Msg | None] = []
        self._next_id = itertools.count(1)

    # -- what differs between a private chat and a group
    def chat_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def _name(self) -> str:
        """How messages and transcripts name this chat."""
        raise NotImplementedError

    def _author(self, m: Msg) -> str:
        """Who wrote a message that is not the bot's."""
        return m.sender.first_name if m.sender else self._name()

    def _reachable(self) -> None:
        """Raise the Bot API's refusal if the bot cannot address this chat at all."""

    def _writable(self) -> None:
        """Raise the Bot API's refusal if the bot may not post in this chat now."""

    def _check_tap(self, user: SimUser, data: str) -> None:
        """Fail the test if ``user`` could not tap a button here now."""

    # -- views
    @property
    def messages(self) -> list[Msg]:
        return [m for m in self._all if not m.deleted]

    @property
    def bot_messages(self) -> list[Msg]:
        return [m for m in self._all if m.from_bot and not m.deleted]

    @property
    def last(self) -> Msg:
        mine = self.bot_messages
        if not mine:
            raise AssertionError(f"the bot has sent nothing to {self._name()}\n{self.transcript()}")
        return max(mine, key=lambda m: m.message_id)

    async def wait_for(
        self,
        text: str,
        *,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> Msg:
        """Wait for a bot message containing ``text`` in this chat, newer than message id
        ``after``: one the bot sends on its own (a notice, a request card), not in reply to
        anything the user just did."""
        server = self._server
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        revision = server.revision
        while True:
            for m in sorted(self.bot_messages, key=lambda m: m.message_id, reverse=True):
                if m.message_id > after and text in m.content:
                    return m
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no message with {text!r} after {timeout}s\n{self.transcript()}"
                )
            revision = await server.wait_change(revision, remaining)

    def message(self, message_id: int) -> Msg | None:
        """The message with this id if it is still in the chat."""
        return next((m for m in self._all if m.message_id == message_id and not m.deleted), None)

    def _add(self, msg: Msg) -> Msg:
        self._all.append(msg)
        self._server._changed()
        return msg

    def _new_id(self) -> int:
        return next(self._next_id)

    async def reaction(
        self,
        update_id: int,
        *,
        expect: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> list[Msg]:
        """Wait for the bot's reaction to an update queued with type_text() or press(), as
        send() and tap() do; several can be queued first, to arrive in one batch."""
        return await self._server._await_reaction(
            self, update_id, expect, timeout, f"reaction to update {update_id}"
        )

    def _typed(self, sender: SimUser | None, text: str) -> Msg:
        """A message a member (or, for None, the channel itself) writes in this chat."""
        if not text:
            raise AssertionError("Telegram does not send empty messages")
        return self._add(
            Msg(
                self._new_id(),
                from_bot=False,
                text=text,
                entities=command_entities(text),
                date=int(time.time()),
                sender=sender,
            )
        )

    def _find_button(self, label: str, message: Msg | None) -> tuple[Msg, Button]:
        if message is not None and message.deleted:
            raise AssertionError(f"message #{message.message_id} was deleted\n{self.transcript()}")
        candidates = (
            [message]
            if message is not None
            else sorted(self.bot_messages, key=lambda m: m.message_id, reverse=True)
        )
        for exact in (True, False):
            for m in candidates:
                hits = [
                    b
                    for row in m.buttons
                    for b in row
                    if (b.text == label if exact else label in b.text)
                ]
                if len(hits) > 1:
                    raise AssertionError(
                        f"{label!r} is ambiguous on message #{m.message_id}: "
                        f"{[b.text for b in hits]}\n{self.transcript()}"
                    )
                if hits:
                    return m, hits[0]
        visible = {m.message_id: m.labels for m in candidates if m.buttons}
        raise AssertionError(
            f"no button {label!r}; visible buttons: {visible}\n{self.transcript()}"
        )

    def _header(self) -> str:
        return f"--- {self._name()} (id {self.id}) ---"

    def transcript(self) -> str:
        """The chat as text: one line per message, inline buttons in [brackets]."""
        lines = [self._header()]
        for m in self._all:
            lines.extend(self._transcript_lines(m))
        return "\n".join(lines)

    def _transcript_lines(self, m: Msg) -> list[str]:
        """A message's line, then its inline buttons' rows and its reply keyboard."""
        flags = ([f"edited x{m.edited}"] if m.edited else []) + (["deleted"] if m.deleted else [])
        who = ("bot" if m.from_bot else self._author(m)) + (
            f" ({', '.join(flags)})" if flags else ""
        )
        if m.kind == "text":
            body = m.text
        else:
            size = (
                f"{len(m.photo or m.document or b'')} bytes"
                if (m.photo or m.document)
                else "by URL/file_id"
            )
            body = f"<{m.kind} {m.document_name or ''} {size}> {m.caption or ''}"
        lines = [f"#{m.message_id} {who}: " + body.replace("\n", "\n    ")]
        lines.extend("    " + " ".join(f"[{b.text}]" for b in row) for row in m.buttons)
        if m.reply_keyboard:
            lines.append(
                "    keyboard: "
                + " | ".join(" ".join(f"[{label}]" for label in row) for row in m.reply_keyboard)
            )
        return lines
