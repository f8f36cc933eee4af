"""The bot's own working state (conversation steps and drafts), stored as JSON rows.

Rows of two kinds, each naming its user: the user's data ('user_data': drafts, prompts,
the ids of their last updates) and one row per conversation they are in ('conversation':
its state, and when its last step was taken). A worker reads a user's rows at the start of
each of their updates and writes what changed at its end (bot/userstate.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Reads, Writes, fetch_all, now

USER_DATA = "user_data"
CONVERSATION = "conversation"


@dataclass(frozen=True)
class StateRow:
    kind: str
    name: str  # the conversation's name; '' for user_data
    key: str  # JSON: the conversation key [chat, user], or the user id
    value: str  # JSON
    stepped_at_ms: int | None  # a conversation's last step


@dataclass(frozen=True)
class Claimed:
    """A conversation claimed because its deadline passed."""

    name: str
    key: str
    user_id: int
    stepped_at_ms: int


async def load(conn: Reads, kind: str, name: str = "") -> list[tuple[str, str, int]]:
    """(key, value, touched_at) for every row of one kind (and conversation name)."""
    rows = await fetch_all(
        conn,
        "SELECT key, value, touched_at FROM bot_state WHERE kind = ? AND name = ?",
        (kind, name),
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def for_user(conn: Reads, user_id: int) -> list[StateRow]:
    """Everything stored for one user: their data and their conversations, in one read."""
    rows = await fetch_all(
        conn,
        "SELECT kind, name, key, value, stepped_at_ms FROM bot_state WHERE user_id = ?",
        (user_id,),
    )
    return [StateRow(row[0], row[1], row[2], row[3], row[4]) for row in rows]


def _user_of(kind: str, key: str) -> int:
    if kind == CONVERSATION:
        return int(json.loads(key)[-1])  # per user: the user comes last
    return int(key)


async def save(conn: Writes, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Insert or replace (kind, name, key, value) rows in one statement (a conversation's
    step taken now)."""
    at_ms = round(time.time() * 1000)
    await store(
        conn,
        [
            (kind, name, key, value, at_ms if kind == CONVERSATION else None)
            for kind, name, key, value in rows
        ],
    )


async def store(conn: Writes, rows: Sequence[tuple[str, str, str, str, int | None]]) -> None:
    """Insert or replace (kind, name, key, value, stepped_at_ms) rows in one statement:
    alone, it is a transaction of its own, and all rows are stored or none."""
    at = now()
    await conn.execute(
        "INSERT INTO bot_state (kind, name, key, value, touched_at, user_id, stepped_at_ms)"
        " VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        + " ON CONFLICT (kind, name, key) DO UPDATE SET value = excluded.value,"
        " touched_at = excluded.touched_at, user_id = excluded.user_id,"
        " stepped_at_ms = excluded.stepped_at_ms",
        [
            field
            for kind, name, key, value, stepped in rows
            for field in (kind, name, key, value, at, _user_of(kind, key), stepped)
        ],
    )


async def drop(conn: Writes, kind: str, name: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM bot_state WHERE kind = ? AND name = ? AND key = ?", (kind, name, key)
    )


async def end_timed_out(conn: Writes, name: str, key: str, stepped_at_ms: int) -> bool:
    """Claim one conversation whose deadline passed, as it was read: True for the one
    caller (an update, or the timed job on any worker) that ends it and says so."""
    cur = await conn.execute(
        "DELETE FROM bot_state WHERE kind = 'conversation' AND name = ? AND key = ?"
        " AND stepped_at_ms = ?",
        (name, key, stepped_at_ms),
    )
    return cur.rowcount > 0


async def claim_timed_out(conn: Writes, stepped_before_ms: int) -> list[Claimed]:
    """Claim every conversation whose last step came before this moment: each row is
    deleted, and so returned, once, whichever worker asks."""
    rows = await fetch_all(
        conn,
        "DELETE FROM bot_state WHERE kind = 'conversation' AND stepped_at_ms < ?"
        " RETURNING name, key, user_id, stepped_at_ms",
        (stepped_before_ms,),
    )
    return [Claimed(row[0], row[1], row[2], row[3]) for row in rows]


async def user_data_of(conn: Reads, user_ids: Sequence[int]) -> dict[int, str]:
    """The stored data (JSON) of these users."""
    if not user_ids:
        return {}
    rows = await fetch_all(
        conn,
        "SELECT user_id, value FROM bot_state WHERE kind = 'user_data' AND user_id IN ("
        + ", ".join("?" * len(user_ids))
        + ")",
        tuple(user_ids),
    )
    return {row[0]: row[1] for row in rows}


async def replace_user_data(conn: Writes, user_id: int, old: str, new: str) -> bool:
    """The user's data, replaced only if it is still `old` (their own update may have
    written it meanwhile: then it stays as they left it)."""
    cur = await conn.execute(
        "UPDATE bot_state SET value = ?, touched_at = ? WHERE kind = 'user_data'"
        " AND name = '' AND key = ? AND value = ?",
        (new, now(), str(user_id), old),
    )
    return cur.rowcount > 0
