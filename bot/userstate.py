"""Each user's working state, read from the database for the update being handled and
written back at its end, so that any worker can take any update (issue #19).

A user's state is their data (PTB's `context.user_data`: the flows' drafts, their open
prompts, a language chosen before signing in, the ids of their last updates) and the
conversations they are in (each one's state and the time of its last step). Nothing of
it is loaded at start-up or kept between updates: an early handler group reads it in one
query (in the same read as who the caller is), and the last group writes what changed in
one transaction, nothing at all when nothing did. A conversation's step writes it itself,
before its replies go out (conversations/__init__.py).

`context.user_data` is refilled at the start of each update (clear, then update) and
dropped from the Application at its end: it is a scratch for one update, so a worker's
memory does not grow with every user it has served, and no stale copy can be read.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import PortalContext
from storage import state
from storage.db import Reads
from storage.state import CONVERSATION, USER_DATA, StateRow

log = logging.getLogger(__name__)

# The ids of a user's last updates, kept with their data (and so stored with each step):
# enough to recognise the few Telegram sends again after a crash.
SEEN_KEY = "seen_updates"
SEEN_UPDATES = 8

ConversationAt = tuple[str, int]  # a conversation's name, and its chat


@dataclass
class Place:
    """Where a conversation stands: its state, and when its last step was taken."""

    state: int
    stepped_at_ms: int


@dataclass
class UserState:
    """One user's state while one of their updates is handled."""

    user_id: int
    data: dict[Any, Any]  # the update's context.user_data
    conversations: dict[ConversationAt, Place]
    # As stored: the data (a copy of its own, without the seen ids), and the conversations.
    stored_data: dict[Any, Any]
    stored_conversations: dict[ConversationAt, Place]
    # Conversations this update found past their deadline and ended (it says so).
    ended: list[ConversationAt] = field(default_factory=list)
    broken: bool = False  # a write failed: what is in memory is not what is stored


_current: contextvars.ContextVar[UserState | None] = contextvars.ContextVar(
    "user_state", default=None
)


def current() -> UserState | None:
    """The state of the user whose update is being handled (None outside an update)."""
    return _current.get()


def now_ms() -> int:
    """Real time, in milliseconds: conversation timeouts are durations, not the portal's
    clock (storage/clock.py), and several workers share them."""
    return round(time.time() * 1000)


def conversation_key(chat_id: int, user_id: int) -> str:
    """A conversation's key as stored: per chat and per user."""
    return json.dumps([chat_id, user_id])


def data_json(data: dict[Any, Any]) -> str:
    return json.dumps(data, default=_draft_json)


def _comparable(data: dict[Any, Any]) -> dict[Any, Any]:
    """The data as it would read back once stored, but for the seen ids (which alone are
    no reason to write): compared with `==` rather than written out as JSON, which cost
    more than the rest of the comparison (issue #23). A draft held as its model is
    compared as its JSON form; a tuple or an int key compares unequal to what reads back,
    and is written: a write too many. Python's `==` does take 1, 1.0 and True for one
    another, which JSON does not: a value changing only between those is not written. None
    the bot keeps here does (a language, a time, message ids, drafts)."""
    return {
        k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
        for k, v in data.items()
        if k != SEEN_KEY
    }


def _draft_json(value: object) -> object:
    """A flow's draft (a pydantic model, conversations/) as JSON. It comes back from the
    database as a plain dict, which the flow reads back into its model when it next needs
    it: so drafts stored before a flow's model changed are read the same way."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} cannot be stored with a user's drafts")


async def read(conn: Reads, update: Update) -> list[StateRow]:
    """What is stored for this update's user (nothing for an update of nobody): in the
    update's first read, with who they are (conversations/timeouts.py)."""
    user = update.effective_user
    return [] if user is None else await state.for_user(conn, user.id)


def load(update: Update, context: PortalContext, rows: list[StateRow]) -> UserState | None:
    """The user's stored state, as read(), into `context.user_data`; an update this state
    says was handled before ends here (ApplicationHandlerStop)."""
    user = update.effective_user
    _current.set(None)
    if user is None or context.user_data is None:
        return None
    data: dict[Any, Any] = {}
    stored: dict[Any, Any] = {}
    conversations: dict[ConversationAt, Place] = {}
    for row in rows:
        if row.kind == USER_DATA:
            # Read twice: the handlers may change `data` in place, nested values too.
            data, stored = json.loads(row.value), json.loads(row.value)
        elif row.kind == CONVERSATION:
            chat_id = int(json.loads(row.key)[0])
            conversations[(row.name, chat_id)] = Place(
                int(json.loads(row.value)), row.stepped_at_ms or 0
            )
    context.user_data.clear()
    context.user_data.update(data)
    loaded = UserState(
        user.id, context.user_data, dict(conversations), _comparable(stored), conversations
    )
    _current.set(loaded)
    _skip_redelivered(update, context, loaded)
    return loaded


def _skip_redelivered(update: Update, context: PortalContext, loaded: UserState) -> None:
    """An update this user's stored state says was handled is not handled again. Telegram
    sends an update again when the bot died before telling it the update had arrived; its
    step was stored and its reply shown, and a second go would re-ask, or answer a tap
    Telegram no longer takes."""
    seen = loaded.data.setdefault(SEEN_KEY, [])
    if not isinstance(seen, list):
        seen = loaded.data[SEEN_KEY] = []
    if update.update_id in seen:
        log.info("update %s was handled before: not again", update.update_id)
        finish(context, loaded)
        raise ApplicationHandlerStop
    # Stored only with what this update changes (a step, a draft): a crash before that
    # leaves it unseen, and Telegram's second copy is handled. An update that changes
    # nothing is not written at all.
    seen.append(update.update_id)
    del seen[:-SEEN_UPDATES]


async def end_timed_out(context: PortalContext, loaded: UserState, timeout_s: float) -> None:
    """Conversations whose deadline passed before this update came end now, unless the
    timed job on some worker ended them first: `loaded.ended` lists those this update
    ended, whose users it must tell."""
    timeout_ms = round(timeout_s * 1000)
    at = now_ms()
    for (name, chat_id), place in list(loaded.conversations.items()):
        if place.stepped_at_ms + timeout_ms > at:
            continue
        key = conversation_key(chat_id, loaded.user_id)
        async with context.portal.db.statement(change=False) as conn:
            ours = await state.end_timed_out(conn, name, key, place.stepped_at_ms)
        del loaded.conversations[(name, chat_id)]
        del loaded.stored_conversations[(name, chat_id)]
        if ours:
            loaded.ended.append((name, chat_id))


async def store(context: PortalContext) -> None:
    """What changed in this user's state since it was loaded (or last stored), in one
    transaction; nothing when nothing changed."""
    loaded = current()
    if loaded is None or loaded.broken:
        return
    data = _comparable(loaded.data)
    saves = {
        at: place
        for at, place in loaded.conversations.items()
        if loaded.stored_conversations.get(at) != place
    }
    drops = [at for at in loaded.stored_conversations if at not in loaded.conversations]
    if data == loaded.stored_data and not saves and not drops:
        return
    user_id = loaded.user_id
    # The user's data goes with every write: the seen ids with it.
    written = data_json(loaded.data)
    rows: list[tuple[str, str, str, str, int | None]] = [
        (USER_DATA, "", str(user_id), written, None)
    ]
    rows += [
        (CONVERSATION, name, conversation_key(chat, user_id), json.dumps(p.state), p.stepped_at_ms)
        for (name, chat), p in saves.items()
    ]
    db = context.portal.db
    try:
        if not drops:  # a step: one statement is one trip to the database
            async with db.statement(change=False) as conn:
                await state.store(conn, rows)
        else:
            async with db.transaction(change=False) as conn:
                for name, chat in drops:
                    await state.drop(conn, CONVERSATION, name, conversation_key(chat, user_id))
                await state.store(conn, rows)
    except BaseException:
        loaded.broken = True  # the next update reads what is stored
        raise
    loaded.stored_data = _comparable(json.loads(written))  # as it reads back, a copy
    loaded.stored_conversations = dict(loaded.conversations)


async def store_after_update(update: Update, context: PortalContext) -> None:
    """After every handler: what the update changed and no step stored yet (a prompt that
    lost its buttons, a language chosen, a name to search), then the update's scratch is
    dropped."""
    loaded = current()
    if loaded is None:
        return
    try:
        await store(context)
    except Exception:  # e.g. a full disk: the handler's own error already told the user
        log.exception("could not store the user's state after update %s", update.update_id)
    finally:
        finish(context, loaded)


def finish(context: PortalContext, loaded: UserState) -> None:
    """The update is over: its user's data is not kept in memory."""
    context.application.drop_user_data(loaded.user_id)
    _current.set(None)


async def forget(context: PortalContext, user_id: int, keep: Collection[str]) -> None:
    """A user's data, all but the `keep` keys: in this update's state when it is theirs,
    else in the database (another user's update would write theirs back: it is taken only
    if it is still as read)."""
    loaded = current()
    if loaded is not None and loaded.user_id == user_id:
        kept = {k: v for k, v in loaded.data.items() if k in keep}
        loaded.data.clear()
        loaded.data.update(kept)
        return
    async with context.portal.db.transaction(change=False) as conn:
        stored = (await state.user_data_of(conn, [user_id])).get(user_id)
        if stored is None:
            return
        kept = {k: v for k, v in json.loads(stored).items() if k in keep}
        await state.replace_user_data(conn, user_id, stored, json.dumps(kept))
