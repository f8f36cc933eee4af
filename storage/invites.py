"""Invites: single-use sign-in links. Only the SHA-256 of a token is ever stored."""

from __future__ import annotations

import datetime as dt

from storage.db import Reads, Record, Writes, fetch_one, now
from storage.models import Invite

_COLUMNS = (
    "id, patient_id, invited_by, created_at, expires_at, used_at, used_by,"
    " failed_dob_tries, locked_at, created_by_patient, burned_at, date_of_birth"
)


def _invite(row: Record | None) -> Invite | None:
    return Invite.model_validate(dict(row)) if row else None


async def create(
    conn: Writes,
    token_hash: str,
    patient_id: int,
    expires_at: int,
    invited_by: int | None = None,
    created_by_patient: int | None = None,
    date_of_birth: dt.date | None = None,
) -> Invite:
    row = await fetch_one(
        conn,
        "INSERT INTO invites (token_hash, patient_id, invited_by, created_at, expires_at,"
        " created_by_patient, date_of_birth) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            token_hash,
            patient_id,
            invited_by,
            now(),
            expires_at,
            created_by_patient,
            date_of_birth.isoformat() if date_of_birth else None,
        ),
    )
    assert row is not None
    invite = await get(conn, row[0])
    assert invite is not None
    return invite


async def get(conn: Reads, invite_id: int) -> Invite | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM invites WHERE id = ?", (invite_id,))
    return _invite(row)


async def by_token_hash(conn: Reads, token_hash: str) -> Invite | None:
    row = await fetch_one(
        conn, f"SELECT {_COLUMNS} FROM invites WHERE token_hash = ?", (token_hash,)
    )
    return _invite(row)


async def count_failed_try(conn: Writes, invite_id: int, lock_after: int) -> Invite:
    """One more wrong date of birth; the invite locks when the count reaches `lock_after`."""
    at = now()
    await conn.execute(
        "UPDATE invites SET failed_dob_tries = failed_dob_tries + 1,"
        " locked_at = CASE WHEN failed_dob_tries + 1 >= ? THEN ? ELSE locked_at END"
        " WHERE id = ? AND used_at IS NULL AND locked_at IS NULL AND burned_at IS NULL",
        (lock_after, at, invite_id),
    )
    invite = await get(conn, invite_id)
    assert invite is not None
    return invite


async def mark_used(conn: Writes, invite_id: int, telegram_user_id: int) -> bool:
    """The one conditional write that consumes an invite: true for exactly one caller."""
    at = now()
    cur = await conn.execute(
        "UPDATE invites SET used_at = ?, used_by = ?"
        " WHERE id = ? AND used_at IS NULL AND locked_at IS NULL AND burned_at IS NULL"
        " AND expires_at > ?",
        (at, telegram_user_id, invite_id, at),
    )
    return cur.rowcount == 1


async def burn(conn: Writes, invite_id: int) -> bool:
    """Make a still-usable invite unusable for good: true for exactly one caller."""
    at = now()
    cur = await conn.execute(
        "UPDATE invites SET burned_at = ?"
        " WHERE id = ? AND used_at IS NULL AND locked_at IS NULL AND burned_at IS NULL"
        " AND expires_at > ?",
        (at, invite_id, at),
    )
    return cur.rowcount == 1


async def expire_now(conn: Writes, invite_id: int) -> None:
    await conn.execute("UPDATE invites SET expires_at = ? WHERE id = ?", (now() - 1, invite_id))


async def expire_open_for_patient(conn: Writes, patient_id: int) -> int:
    """Every unused link to this patient's portal stops working now."""
    at = now()
    cur = await conn.execute(
        "UPDATE invites SET expires_at = ? WHERE patient_id = ? AND used_at IS NULL"
        " AND expires_at > ?",
        (at, patient_id, at),
    )
    return cur.rowcount
