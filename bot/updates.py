"""Updates the library cannot read are skipped one by one, never a whole batch.

PTB parses a getUpdates batch in one go: a single update it cannot read (a message
without a date, a malformed field, a change in a newer Bot API) fails the whole batch.
Its Updater then asks for the same batch again at once, for ever: nobody is served, and
every round logs the raw batch, everyone's texts included, at CRITICAL (issue #17).

Here each update is parsed on its own. One that fails is logged by its update_id and the
exception's type only (its content is other people's health data), and is replaced by an
`Unreadable` stand-in carrying just its update_id, so the Updater's offset still moves
past it (bot/portalbot.py's get_updates); the handlers never see it
(`ignore_unreadable`). The webhook route
(bot/webhook.py) parses with the same function.

A tap's update is read with only what identifies the message tapped (`TAPPED_KEPT`): its
id, chat and date. Handlers edit or answer that message, or reply in its chat; none reads
its text, formatting or buttons, which PTB would otherwise build objects for on every tap
(on a page of appointments, 13 buttons were ~40% of the cost of reading a tap).

The two updates nearly every user sends, a plain text or command and a tap, are built
without PTB's `de_json` (`_plain`): PTB sets each of a message's ~100 attributes through
`TelegramObject.__setattr__`, a Python call that only guards against changes once the
object is built, ~220 calls for one update, and `Message.de_json` asks for each of ~60
kinds of content it might carry. Here the same constructors run on a subclass that
assigns attributes directly (`_quick`), and the object is then handed over as the
library's own class: frozen, equal slot by slot to what `de_json` makes
(tests/test_updates.py), in ~35% of the time (benchmarks/README.md, issue #23). Any
other shape, or a field this library does not know, goes through `de_json` as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar, cast

from telegram import Bot, CallbackQuery, Chat, Message, MessageEntity, TelegramObject, Update, User
from telegram._utils.datetime import extract_tzinfo_from_defaults, from_timestamp
from telegram.ext import ApplicationHandlerStop

if TYPE_CHECKING:  # bot.context imports the bot, which parses updates here
    from bot.context import PortalContext

log = logging.getLogger("portal.updates")


class Unreadable(Update):
    """Stands in for an update that could not be parsed: only its update_id."""

    __slots__ = ()


def parse_update(data: object, bot: Bot) -> Update | None:
    """The update in `data`, or an Unreadable stand-in when the library cannot parse it;
    None when it has not even an update_id. A failure is logged without any content."""
    if not isinstance(data, dict):
        log.warning("skipped an update that is not a JSON object: %s", type(data).__name__)
        return None
    update_id = data.get("update_id")
    try:
        slimmed = _with_tapped_message_slimmed(data)
        return _plain(slimmed, bot) or Update.de_json(slimmed, bot)
    except Exception as exc:  # whatever the parser raises, this update alone is lost
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("skipped an update without an update_id: %s", type(exc).__name__)
            return None
        log.warning("skipped update %d: cannot parse it (%s)", update_id, type(exc).__name__)
        return Unreadable(update_id)


# What a handler may use of the message whose button was tapped: which message it is
# (to edit it, or answer in its chat), and its chat's type (bot/handlers/private_only.py).
# A date of 0 stays 0: PTB then reads it as an inaccessible message, as it should.
TAPPED_KEPT = frozenset(
    {"message_id", "chat", "date", "message_thread_id", "business_connection_id"}
)


def _with_tapped_message_slimmed(data: dict[str, Any]) -> dict[str, Any]:
    """A tap's update carries the whole message tapped: text, formatting, buttons. Only
    what identifies it is read (benchmarks/README.md, issue #23)."""
    query = data.get("callback_query")
    if not isinstance(query, dict):
        return data
    message = query.get("message")
    if not isinstance(message, dict) or message.keys() <= TAPPED_KEPT:
        return data
    kept = {key: value for key, value in message.items() if key in TAPPED_KEPT}
    return {**data, "callback_query": {**query, "message": kept}}


async def ignore_unreadable(update: Update, context: PortalContext) -> None:
    """First of all handlers: an Unreadable stand-in goes no further, and says nothing."""
    raise ApplicationHandlerStop


T = TypeVar("T", bound=TelegramObject)

# The fields of the two shapes `_plain` builds; anything else goes through de_json.
_PLAIN_MESSAGE = frozenset({"message_id", "date", "chat", "from", "text", "entities"})
_PLAIN_TAP = frozenset(
    {"id", "from", "message", "chat_instance", "data", "inline_message_id", "game_short_name"}
)
# What Telegram always sends: without it, de_json decides what to make of the update.
_MESSAGE_NEEDS = frozenset({"message_id", "date", "chat"})
_TAP_NEEDS = frozenset({"id", "from", "chat_instance"})


_QUICK: dict[type[TelegramObject], type[TelegramObject]] = {}


def _quick(cls: type[T]) -> type[T]:
    """`cls`, assigning attributes with object.__setattr__ while its constructor runs."""
    quick = _QUICK.get(cls)
    if quick is None:
        attrs = {"__slots__": (), "__setattr__": object.__setattr__}
        quick = _QUICK[cls] = type(cls.__name__, (cls,), attrs)
    return cast("type[T]", quick)


def _handed_over(obj: TelegramObject, cls: type[T]) -> T:
    """The object built as `_quick(cls)`, now a `cls` itself: PTB's __setattr__ again, so
    it is frozen as the library's own. (Same slots: the subclass adds none.)"""
    object.__setattr__(obj, "__class__", cls)
    return cast("T", obj)


def _read(cls: type[T], data: dict[str, Any], bot: Bot) -> T:
    """A User, Chat or MessageEntity by the library's own de_json, built quickly."""
    return _handed_over(_quick(cls).de_json(data, bot), cls)


def _plain(data: dict[str, Any], bot: Bot) -> Update | None:
    """A plain text or command, or a tap on a message (slimmed above); None for any other
    update, which de_json reads."""
    if len(data) != 2 or "update_id" not in data:
        return None
    message, query = data.get("message"), data.get("callback_query")
    if isinstance(message, dict) and _MESSAGE_NEEDS <= message.keys() <= _PLAIN_MESSAGE:
        update = _quick(Update)(data["update_id"], message=_message(message, bot))
    elif isinstance(query, dict) and _TAP_NEEDS <= query.keys() <= _PLAIN_TAP:
        update = _quick(Update)(data["update_id"], callback_query=_tap(query, bot))
    else:
        return None
    update.set_bot(bot)
    return _handed_over(update, Update)


def _message(data: dict[str, Any], bot: Bot) -> Message:
    """What Message.de_json makes of a message with only these fields."""
    sender, entities = data.get("from"), data.get("entities")
    message = _quick(Message)(
        message_id=data["message_id"],
        date=_date(data["date"], bot),
        chat=_read(Chat, data["chat"], bot),
        from_user=None if sender is None else _read(User, sender, bot),
        text=data.get("text"),
        entities=None if entities is None else [_read(MessageEntity, e, bot) for e in entities],
    )
    message.set_bot(bot)
    return _handed_over(message, Message)


def _tap(data: dict[str, Any], bot: Bot) -> CallbackQuery:
    """What CallbackQuery.de_json makes of a tap."""
    tapped = data.get("message")
    sender = data["from"]
    query = _quick(CallbackQuery)(
        id=data["id"],
        from_user=_read(User, sender, bot),
        chat_instance=data["chat_instance"],
        message=None if tapped is None else _tapped(tapped, bot),
        data=data.get("data"),
        inline_message_id=data.get("inline_message_id"),
        game_short_name=data.get("game_short_name"),
    )
    query.set_bot(bot)
    return _handed_over(query, CallbackQuery)


def _tapped(data: dict[str, Any], bot: Bot) -> Message:
    """The message tapped, as slimmed above; one that is no longer accessible (a date of
    0), or that carries more, is PTB's to read."""
    if data.keys() != _MESSAGE_NEEDS or data["date"] == 0:
        return Message.de_json(data, bot)
    return _message(data, bot)


def _date(unixtime: int, bot: Bot) -> Any:
    # As MaybeInaccessibleMessage._de_json converts it: in the Defaults' zone, if any.
    return from_timestamp(unixtime, tzinfo=extract_tzinfo_from_defaults(bot))
