"""Practitioners: the staff allowed to invite patients."""

from __future__ import annotations

from storage.db import Reads, Writes, fetch_all, fetch_one, now
from storage.models import Practitioner


async def get(conn: Reads, telegram_user_id: int) -> Practitioner | None:
    row = await fetch_one(
        conn,
        "SELECT telegram_user_id, name, created_at FROM practitioners WHERE telegram_user_id = ?",
        (telegram_user_id,),
    )
    return Practitioner.model_validate(dict(row)) if row else None


async def upsert(conn: Writes, telegram_user_id: int, name: str) -> Practitioner:
    await conn.execute(
        "INSERT INTO practitioners (telegram_user_id, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (telegram_user_id) DO UPDATE SET name = excluded.name",
        (telegram_user_id, name, now()),
    )
    practitioner = await get(conn, telegram_user_id)
    assert practitioner is not None
    return practitioner


async def all_ids(conn: Reads) -> list[int]:
    rows = await fetch_all(
        conn, "SELECT telegram_user_id FROM practitioners ORDER BY telegram_user_id"
    )
    return [row[0] for row in rows]
