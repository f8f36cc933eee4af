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
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram.ext import ApplicationHandlerStop
from telegram.warnings import PTBUserWarning

if TYPE_CHECKING:  # bot.context imports the bot, which parses updates here
    from bot.context import PortalContext

log = logging.getLogger("portal.updates")

# Bot.do_api_request advises Bot.get_updates for this endpoint; we call the endpoint on
# purpose, to parse what it returns one update at a time.
warnings.filterwarnings("ignore", "Please use 'Bot.getUpdates'", PTBUserWarning)


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
        return Update.de_json(_with_tapped_message_slimmed(data), bot)
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
