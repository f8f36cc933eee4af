"""After a restart: tell users whose unfinished flow timed out while the bot was away."""

from __future__ import annotations

import logging
from typing import NamedTuple

from telegram.error import TelegramError

from bot.context import PortalApp, PortalContext, portal, recipient_language
from bot.i18n import Translator
from bot.persistence import ConversationKey, SQLitePersistence
from storage import clock

log = logging.getLogger(__name__)


def _message(_: Translator) -> str:
    return _(
        "You didn't finish what you started before I restarted, and it has timed out: "
        "nothing was sent or created. You can start again at any time."
    )


class _Due(NamedTuple):
    """A restored conversation's deadline job: which flow, whose."""

    name: str
    key: ConversationKey


async def _tell(app: PortalApp, key: ConversationKey) -> None:
    chat_id, user_id = int(key[0]), int(key[-1])
    _ = await recipient_language(portal(app), user_id)
    try:
        await app.bot.send_message(chat_id, _message(_))
    except TelegramError as exc:
        log.info("could not tell a user their flow timed out: %s", type(exc).__name__)


async def settle_restored_conversations(app: PortalApp) -> None:
    """Expired before start-up: tell now. Still running: tell when the deadline passes."""
    persistence = app.persistence
    if not isinstance(persistence, SQLitePersistence):
        return
    deadlines = persistence.deadlines
    for _name, key in deadlines.expired:
        await _tell(app, key)
    deadlines.expired.clear()
    assert app.job_queue is not None
    for (name, key), deadline in list(deadlines.due.items()):
        app.job_queue.run_once(
            _deadline_passed, when=max(0.0, deadline - clock.time()), data=_Due(name, key)
        )


async def _deadline_passed(context: PortalContext) -> None:
    """The user did not come back in time: tell them, and forget the stored step. The
    conversation in memory ends through the flow's guard if they write again."""
    assert context.job is not None
    due = context.job.data
    assert isinstance(due, _Due)
    name, key = due
    persistence = context.application.persistence
    assert isinstance(persistence, SQLitePersistence)
    if (name, key) not in persistence.deadlines.due:
        return  # they came back in time
    await persistence.update_conversation(name, key, None)
    await _tell(context.application, key)
