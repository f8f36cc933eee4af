"""The commands and buttons outside the conversations, reached by name rather than by trying
each in turn.

PTB hands an update to the first handler of a group whose check_update accepts it. With
bot/app.py's table of ~70 commands and buttons in one group, an update no handler before
it took was offered to each of them: ~35 checks per update on average, each a few Python
calls, regular expressions for the buttons. `Table` is that table as one handler. A
command can only match the CommandHandler of its name, and a tap only a handler whose
kind's prefix begins its data (bot/callbacks.py: each kind's pattern is anchored on its
prefix, followed by ':' and the fields), so it looks those up and asks them alone, in the
table's order, with PTB's own check_update: what matches, and with what arguments, is what
the linear scan found (tests/test_dispatch.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NamedTuple, TypeVar

from telegram import MessageEntity, Update
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler

from bot.callbacks import Callback
from bot.context import PortalContext
from bot.portalbot import answers_after_reply, send_answers

AnyHandler = BaseHandler[Update, PortalContext, Any]
Callback_ = Callable[[Update, PortalContext], Coroutine[Any, Any, None]]
T = TypeVar("T")


class Button(CallbackQueryHandler[PortalContext, None]):
    """A button's handler, on its kind's anchored pattern: data and handler cannot drift."""

    __slots__ = ("kind",)

    def __init__(self, kind: type[Callback], callback: Callback_) -> None:
        super().__init__(callback, pattern=kind.pattern())
        self.kind = kind


class _Match(NamedTuple):
    handler: AnyHandler
    check: object


class Table(BaseHandler[Update, PortalContext, None]):
    """One handler for many commands and buttons, each found by its command's name or its
    button kind's prefix. Two entries for one name or prefix would make the table's order
    matter: refused."""

    def __init__(self, entries: Sequence[CommandHandler[PortalContext, Any] | Button]) -> None:
        super().__init__(self._unused)
        self.entries = list(entries)
        self._commands: dict[str, AnyHandler] = {}
        self._buttons: dict[str, tuple[int, AnyHandler]] = {}
        for at, entry in enumerate(entries):
            if isinstance(entry, Button):
                _add(self._buttons, entry.kind.prefix, (at, entry))
            elif isinstance(entry, CommandHandler):
                for command in entry.commands:
                    _add(self._commands, command, entry)
            else:
                raise TypeError(f"the table takes commands and buttons, not {entry!r}")

    @staticmethod
    async def _unused(update: Update, context: PortalContext) -> None:
        raise RuntimeError("the table hands each update to one of its entries")

    def check_update(self, update: object) -> _Match | None:
        if not isinstance(update, Update):
            return None
        for entry in self._entries_for(update):
            check = entry.check_update(update)
            if check is not None and check is not False:
                return _Match(entry, check)
        return None

    def _entries_for(self, update: Update) -> list[AnyHandler]:
        query = update.callback_query
        if query is not None:
            if not isinstance(query.data, str):
                return []
            # Every ':'-bounded start of the data that is some kind's prefix ("home:v" and
            # its fields, say), in the table's order.
            parts = query.data.split(":")
            starts = (":".join(parts[:n]) for n in range(1, len(parts) + 1))
            found = [self._buttons[start] for start in starts if start in self._buttons]
            return [entry for _, entry in sorted(found, key=lambda found: found[0])]
        # Read as CommandHandler reads it: a command entity at the very start of the text.
        message = update.effective_message
        if message is None or not message.text or not message.entities:
            return []
        first = message.entities[0]
        if first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
            return []
        entry = self._commands.get(message.text[1 : first.length].split("@", 1)[0].lower())
        return [] if entry is None else [entry]

    async def handle_update(
        self,
        update: Update,
        application: Application[Any, PortalContext, Any, Any, Any, Any],
        check_result: object,
        context: PortalContext,
    ) -> None:
        assert isinstance(check_result, _Match)
        # A tap's answer goes once the entry has replied, not a round trip before it.
        with answers_after_reply() as answers:
            try:
                await check_result.handler.handle_update(
                    update, application, check_result.check, context
                )
            finally:
                await send_answers(answers)


def _add(index: dict[str, T], key: str, entry: T) -> None:
    if key in index:
        raise ValueError(f"two entries of the table answer {key!r}")
    index[key] = entry
