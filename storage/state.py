"""The bot's own working state (conversation steps and drafts), stored as JSON rows."""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Reads, Writes, fetch_all, now


async def load(conn: Reads, kind: str, name: str = "") -> list[tuple[str, str, int]]:
    """(key, value, touched_at) for every row of one kind (and conversation name)."""
    rows = await fetch_all(
        conn,
        "SELECT key, value, touched_at FROM bot_state WHERE kind = ? AND name = ?",
        (kind, name),
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def save(conn: Writes, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Insert or replace (kind, name, key, value) rows in one statement: alone, it is a
    transaction of its own, and all rows are stored or none."""
    at = now()
    await conn.execute(
        "INSERT INTO bot_state (kind, name, key, value, touched_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
        + " ON CONFLICT (kind, name, key) DO UPDATE SET value = excluded.value,"
        " touched_at = excluded.touched_at",
        [field for row in rows for field in (*row, at)],
    )


async def drop(conn: Writes, kind: str, name: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM bot_state WHERE kind = ? AND name = ? AND key = ?", (kind, name, key)
    )
