"""PTB persistence in our own SQLite database (not a pickle file): conversation states and
each user's drafts survive a restart, and flows abandoned before it still time out.

PTB does not persist conversation timeouts. So on start-up every restored conversation
gets a deadline (last step + timeout): one that has passed is not restored at all, and
its user is told it timed out; one still running gets a job that tells the user when it
passes, and a guard in each flow ends it if they come back after that.

What PTB hands over after an update (the user's drafts, the conversation's new step) is
written in one transaction by commit(), right after the update: never a step without
the answer that led to it. Updates of different users run side by side, so each commit
writes one user's part only: another user's step, handed over with ours, waits for the
end of their own update, when their drafts are handed over too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BasePersistence,
    PersistenceInput,
)

from bot.context import BotData, PortalApp, PortalContext
from bot.processing import OneAtATimePerUser
from storage import Database, clock, state

log = logging.getLogger(__name__)
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]
CDCData = Any  # callback data is not stored
CONVERSATION = "conversation"
PERSIST_EVERY_S = 5  # the backstop; a step's state is also written right after its update
USER_DATA = "user_data"


@dataclass
class Deadlines:
    """Restored conversations and when they time out: (name, key) -> unix time."""

    timeout: float
    due: dict[tuple[str, ConversationKey], float] = field(default_factory=dict)
    expired: list[tuple[str, ConversationKey]] = field(default_factory=list)  # at start-up

    def stale(self, name: str, key: ConversationKey) -> bool:
        """True once for a restored conversation whose deadline has passed."""
        deadline = self.due.get((name, key))
        if deadline is None:
            return False
        if clock.time() < deadline:
            # The user is back in time: from now on PTB's own timeout applies.
            del self.due[(name, key)]
            return False
        del self.due[(name, key)]
        return True


class SQLitePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], BotData]):
    """user_data and conversations only: bot_data holds live objects, never persisted."""

    def __init__(self, db: Database, deadlines: Deadlines) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=PERSIST_EVERY_S,
        )
        self.db = db
        self.deadlines = deadlines
        # user_data as last stored, as JSON (absent: nothing stored). PTB hands over every
        # user's data after each of their updates, changed or not; most updates change
        # nothing, and an unchanged draft need not be written again.
        self._stored: dict[int, str] = {}
        # Steps a conversation stored itself before replying (store_step), which PTB then
        # hands over again: (name, key JSON) -> the value stored.
        self._just_stored: dict[tuple[str, str], str | None] = {}
        # What PTB handed over and commit() has not yet written: (kind, name, key) ->
        # (the user it belongs to, JSON or None to delete). PTB hands over a user's draft
        # and their conversation step as separate calls; written one by one, a crash
        # between them could leave a flow at a step whose answers were never stored.
        self._pending: dict[tuple[str, str, str], tuple[int | None, str | None]] = {}

    async def _connected(self) -> Database:
        await self.db.connect()
        await self.db.migrate()
        return self.db

    async def get_conversations(self, name: str) -> ConversationDict:
        db = await self._connected()
        async with db.read() as conn:
            rows = await state.load(conn, CONVERSATION, name)
        restored: ConversationDict = {}
        for key_json, value_json, touched_at in rows:
            key = tuple(json.loads(key_json))
            deadline = touched_at + self.deadlines.timeout
            if deadline <= clock.time():
                self.deadlines.expired.append((name, key))
                async with db.transaction() as conn:
                    await state.drop(conn, CONVERSATION, name, key_json)
                continue
            restored[key] = json.loads(value_json)
            self.deadlines.due[(name, key)] = deadline
        return restored

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        # Kept even when the state is unchanged: touched_at is the step's time, which sets
        # the deadline of a conversation restored after a restart.
        value = None if new_state is None else json.dumps(new_state)
        key_json = json.dumps(list(key))
        if self._just_stored.pop((name, key_json), "") == value:
            return  # stored a moment ago by store_step, answer and all
        user = key[-1] if isinstance(key[-1], int) else None  # per_user: the user comes last
        self._pending[(CONVERSATION, name, key_json)] = (user, value)

    async def store_step(
        self,
        name: str,
        key: ConversationKey,
        new_state: object | None,
        user_id: int,
        user_data: dict[Any, Any] | None,
    ) -> None:
        """A conversation's new step and the user's drafts, stored now in one transaction,
        before the step's replies go out (conversations/__init__.py)."""
        await self.update_conversation(name, key, new_state)
        await self.store_drafts(user_id, user_data)
        value = None if new_state is None else json.dumps(new_state)
        self._just_stored[(name, json.dumps(list(key)))] = value

    async def store_drafts(self, user_id: int, user_data: dict[Any, Any] | None) -> None:
        """The user's drafts (and whatever else is handed over for them), stored now."""
        if user_data is not None:
            await self.update_user_data(user_id, user_data)
        await self.commit(user_id)

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        db = await self._connected()
        async with db.read() as conn:
            rows = await state.load(conn, USER_DATA)
        self._stored = {int(key): value for key, value, _ in rows}
        return {user_id: json.loads(value) for user_id, value in self._stored.items()}

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        key = (USER_DATA, "", str(user_id))
        value = json.dumps(data, default=_draft_json) if data else None
        if key not in self._pending and value == self._stored.get(user_id):
            return
        self._pending[key] = (user_id, value)

    async def drop_user_data(self, user_id: int) -> None:
        self._pending[(USER_DATA, "", str(user_id))] = (user_id, None)

    async def commit(self, user_id: int | None = None, *, busy: Container[int] = ()) -> None:
        """Write, in one transaction, what PTB handed over for this user (right after their
        update), or else for every user but the busy ones (those with an update in flight,
        whose steps may be handed over before their drafts): a step's draft and its
        conversation state are stored together or not at all."""
        pending = {
            item: value
            for item, value in self._pending.items()
            if (value[0] == user_id if user_id is not None else value[0] not in busy)
        }
        if not pending:
            return
        for item in pending:
            del self._pending[item]
        saves = [(*item, value) for item, (_user, value) in pending.items() if value is not None]
        drops = [item for item, (_user, value) in pending.items() if value is None]
        try:
            if not drops:  # a step: one statement is one trip to the database thread
                async with self.db.statement(change=False) as conn:
                    await state.save(conn, saves)
            else:
                async with self.db.transaction(change=False) as conn:
                    for kind, name, key in drops:
                        await state.drop(conn, kind, name, key)
                    if saves:
                        await state.save(conn, saves)
        except BaseException:
            for item, owed in pending.items():  # for the next commit, unless superseded
                self._pending.setdefault(item, owed)
            raise
        for (kind, _name, key), (_user, value) in pending.items():
            if kind == USER_DATA:
                if value is None:
                    self._stored.pop(int(key), None)
                else:
                    self._stored[int(key)] = value

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Nothing to do: this process is the only writer of its users' drafts."""

    # Not stored (see PersistenceInput above); PTB still calls these.
    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def get_bot_data(self) -> BotData:
        return BotData()

    async def update_bot_data(self, data: BotData) -> None:
        return None

    async def refresh_bot_data(self, bot_data: BotData) -> None:
        return None

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def flush(self) -> None:
        """PTB's last call at shutdown, after handing over everything (no update is in
        flight any more)."""
        await self.commit()


def _draft_json(value: object) -> object:
    """A flow's draft (a pydantic model, conversations/) as JSON. It comes back from the
    database as a plain dict, which the flow reads back into its model when it next needs
    it: so drafts stored before a flow's model changed are read the same way."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} cannot be stored with a user's drafts")


# The ids of a user's last updates, kept with their drafts (and so stored with each step):
# enough to recognise the few Telegram sends again after a crash.
SEEN_KEY = "seen_updates"
SEEN_UPDATES = 8


async def skip_redelivered(update: Update, context: PortalContext) -> None:
    """Before any handler: an update this user's stored state says was handled is not
    handled again. Telegram sends an update again when the bot died before telling it the
    update had arrived; its step was stored and its reply shown, and a second go would
    re-ask, or answer a tap Telegram no longer takes."""
    if context.user_data is None:
        return
    seen = context.user_data.setdefault(SEEN_KEY, [])
    if not isinstance(seen, list):
        seen = context.user_data[SEEN_KEY] = []
    if update.update_id in seen:
        log.info("update %s was handled before: not again", update.update_id)
        raise ApplicationHandlerStop
    # Stored only with what this update changes (its step, or the flush after it): a crash
    # before that leaves it unseen, and Telegram's second copy is handled.
    seen.append(update.update_id)
    del seen[:-SEEN_UPDATES]


async def flush_after_update(update: Update, context: PortalContext) -> None:
    """Write the step just taken now, not within the next interval: a crash right after a
    reply must not lose the answer the user saw acknowledged."""
    app = context.application
    user_id = update.effective_user.id if update.effective_user else None
    # PTB marks an update's user and chat for persistence only after its last handler
    # group, which is this one: unmarked, this step's draft would wait for the next flush
    # while its conversation state (tracked separately) went now.
    app.mark_data_for_update_persistence(
        chat_ids=update.effective_chat.id if update.effective_chat else None,
        user_ids=user_id,
    )
    try:
        await app.update_persistence()
        if isinstance(app.persistence, SQLitePersistence):
            if user_id is None:
                await app.persistence.commit(busy=busy_users(app))
            else:
                await app.persistence.commit(user_id)
    except Exception:  # e.g. a full disk: the handler's own error already told the user
        log.exception("could not store conversation state after update %s", update.update_id)


def busy_users(app: PortalApp) -> Container[int]:
    """Users with an update in flight (or waiting for its turn)."""
    processor = app.update_processor
    return processor.busy_users() if isinstance(processor, OneAtATimePerUser) else ()


async def commit_periodically(context: PortalContext) -> None:
    """A repeating job, next to PTB's own persistence job (which only hands over): writes
    what changes outside updates, such as a conversation timing out."""
    app = context.application
    try:
        if isinstance(app.persistence, SQLitePersistence):
            await app.persistence.commit(busy=busy_users(app))
    except Exception:
        log.exception("could not store conversation state")
