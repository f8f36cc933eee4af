"""Idempotency keys of confirmations that created something."""

from __future__ import annotations

from storage.db import Reads, Writes, fetch_one, now


async def get(conn: Reads, key: str) -> tuple[int, int | None] | None:
    row = await fetch_one(
        conn, "SELECT patient_id, grant_id FROM completed_requests WHERE key = ?", (key,)
    )
    return (row[0], row[1]) if row else None


async def record(conn: Writes, key: str, patient_id: int, grant_id: int | None) -> None:
    await conn.execute(
        "INSERT INTO completed_requests (key, patient_id, grant_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        (key, patient_id, grant_id, now()),
    )
