"""Telegram users signed in to a patient account."""

from __future__ import annotations

import aiosqlite

from storage.db import now
from storage.models import Login

_COLUMNS = "telegram_user_id, patient_id, locale, created_at, current_subject_id"


async def get(conn: aiosqlite.Connection, telegram_user_id: int) -> Login | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM logins WHERE telegram_user_id = ?", (telegram_user_id,)
    )
    row = await cur.fetchone()
    return Login.model_validate(dict(row)) if row else None


async def for_patient(conn: aiosqlite.Connection, patient_id: int) -> Login | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM logins WHERE patient_id = ?", (patient_id,))
    row = await cur.fetchone()
    return Login.model_validate(dict(row)) if row else None


async def create(
    conn: aiosqlite.Connection, telegram_user_id: int, patient_id: int, locale: str | None
) -> Login:
    await conn.execute(
        "INSERT INTO logins (telegram_user_id, patient_id, locale, created_at) VALUES (?, ?, ?, ?)",
        (telegram_user_id, patient_id, locale, now()),
    )
    login = await get(conn, telegram_user_id)
    assert login is not None
    return login


async def set_locale(conn: aiosqlite.Connection, telegram_user_id: int, locale: str) -> None:
    await conn.execute(
        "UPDATE logins SET locale = ? WHERE telegram_user_id = ?", (locale, telegram_user_id)
    )


async def set_current_subject(
    conn: aiosqlite.Connection, telegram_user_id: int, subject_id: int | None
) -> None:
    """None means the login's own portal."""
    await conn.execute(
        "UPDATE logins SET current_subject_id = ? WHERE telegram_user_id = ?",
        (subject_id, telegram_user_id),
    )
