"""What a whole deployment shares, whichever worker or machine wrote it: today the webhook
Telegram was last given (its URL, the kinds of update asked for, a digest of its secret),
so that setWebhook is called once per deployment, not once per worker."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Writes, fetch_one

_KIND, _NAME, _KEY = "deployment", "", "webhook"


async def lock_webhook(conn: Writes) -> dict[str, Any] | None:
    """The webhook as last stored, its row locked until the transaction ends: a second
    worker starting at the same moment waits here, then finds it stored."""
    await conn.execute(
        "INSERT INTO bot_state (kind, name, key, value, touched_at) VALUES (?, ?, ?, '{}', 0)"
        " ON CONFLICT (kind, name, key) DO NOTHING",
        (_KIND, _NAME, _KEY),
    )
    # An update of the row takes its lock (PostgreSQL), as SQLite's write lock already is.
    await conn.execute(
        "UPDATE bot_state SET touched_at = touched_at WHERE kind = ? AND name = ? AND key = ?",
        (_KIND, _NAME, _KEY),
    )
    row = await fetch_one(
        conn,
        "SELECT value FROM bot_state WHERE kind = ? AND name = ? AND key = ?",
        (_KIND, _NAME, _KEY),
    )
    stored = json.loads(row[0]) if row else {}
    return stored if isinstance(stored, dict) and stored else None


async def store_webhook(conn: Writes, webhook: dict[str, Any], at: int) -> None:
    await conn.execute(
        "UPDATE bot_state SET value = ?, touched_at = ? WHERE kind = ? AND name = ? AND key = ?",
        (json.dumps(webhook, sort_keys=True), at, _KIND, _NAME, _KEY),
    )
