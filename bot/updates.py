"""Updates the library cannot read are skipped one by one, never a whole batch.

PTB parses a getUpdates batch in one go: a single update it cannot read (a message
without a date, a malformed field, a change in a newer Bot API) fails the whole batch.
Its Updater then asks for the same batch again at once, for ever: nobody is served, and
every round logs the raw batch, everyone's texts included, at CRITICAL (issue #17).

Here each update is parsed on its own. One that fails is logged by its update_id and the
exception's type only (its content is other people's health data), and is replaced by an
`Unreadable` stand-in carrying just its update_id, so the Updater's offset still moves
past it; the handlers never see it (`ignore_unreadable`). The webhook route
(bot/webhook.py) parses with the same function.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram._utils.defaultvalue import DEFAULT_NONE  # the default of the signature we override
from telegram.ext import ApplicationHandlerStop, ContextTypes, ExtBot
from telegram.request import BaseRequest
from telegram.warnings import PTBUserWarning

if TYPE_CHECKING:
    from telegram._utils.types import JSONDict, ODVInput  # Bot.get_updates' own annotations

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
    update_id = data.get("update_id") if isinstance(data, dict) else None
    try:
        return Update.de_json(data, bot)  # type: ignore[arg-type]
    except Exception as exc:  # whatever the parser raises, this update alone is lost
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("skipped an update without an update_id: %s", type(exc).__name__)
            return None
        log.warning("skipped update %d: cannot parse it (%s)", update_id, type(exc).__name__)
        return Unreadable(update_id)


async def ignore_unreadable(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """First of all handlers: an Unreadable stand-in goes no further, and says nothing."""
    raise ApplicationHandlerStop


class PortalBot(ExtBot[Any]):
    """PTB's ExtBot, except that getUpdates parses each update on its own."""

    __slots__ = ("_poll_read_timeout",)

    def __init__(self, *args: Any, get_updates_request: BaseRequest, **kwargs: Any) -> None:
        super().__init__(*args, get_updates_request=get_updates_request, **kwargs)
        self._poll_read_timeout = get_updates_request.read_timeout or 0

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: int | dt.timedelta | None = None,  # noqa: ASYNC109 - the Bot API's own
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
        # As Bot.get_updates: a long poll may take its timeout on top of the read timeout.
        base = self._poll_read_timeout if read_timeout is DEFAULT_NONE else read_timeout or 0
        raw = await self.do_api_request(
            "getUpdates",
            api_kwargs={
                **(api_kwargs or {}),
                "offset": offset,
                "limit": limit,
                "timeout": timeout,  # a timedelta is sent in seconds, as by get_updates
                "allowed_updates": allowed_updates,
            },
            read_timeout=base + (seconds or 0),
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        updates = tuple(u for u in (parse_update(data, self) for data in raw) if u is not None)
        for update in updates:
            self.insert_callback_data(update)
        return updates

    getUpdates = get_updates
