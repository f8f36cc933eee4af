"""Access grants and requests between patients."""

from __future__ import annotations

from storage.db import Reads, Record, Writes, fetch_all, fetch_one, now
from storage.models import AccessEntry, Grant
from storage.vocabulary import EndReason, GrantKind, GrantStatus, Level, Relationship, Role

_COLUMNS = (
    "g.id, g.accessor_id, g.subject_id, g.subject_email, g.subject_name, g.relationship,"
    " g.relationship_other,"
    " g.level, g.role, g.status, g.requested_at, g.expires_at, g.decided_at, g.decided_by,"
    " g.notified_at, g.kind, g.end_reason,"
    " g.began_at, g.ends_at, g.kept_at, g.clinical_ok_at, g.continued_at"
)
# A grant's columns and the name of the patient on one side of it, as `other_name`.
_WITH_ACCESSOR_NAME = (
    f"SELECT {_COLUMNS}, p.full_name AS other_name FROM grants g"
    " JOIN patients p ON p.id = g.accessor_id"
)
_WITH_SUBJECT_NAME = (
    f"SELECT {_COLUMNS}, p.full_name AS other_name FROM grants g"
    " JOIN patients p ON p.id = g.subject_id"
)


def _grant(row: Record | None) -> Grant | None:
    return Grant.model_validate(dict(row)) if row else None


async def get(conn: Reads, grant_id: int) -> Grant | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM grants g WHERE g.id = ?", (grant_id,))
    return _grant(row)


async def active(conn: Reads, accessor_id: int, subject_id: int) -> Grant | None:
    """The grant in force between two patients, if any (expired requests never count)."""
    row = await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM grants g"
        " WHERE g.accessor_id = ? AND g.subject_id = ? AND g.status = 'active'",
        (accessor_id, subject_id),
    )
    return _grant(row)


async def expire_stale(conn: Writes) -> int:
    """Pending requests past their expiry become 'expired'."""
    cur = await conn.execute(
        "UPDATE grants SET status = 'expired', decided_at = expires_at"
        " WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?",
        (now(),),
    )
    return cur.rowcount


async def open_between(
    conn: Reads, accessor_id: int, subject_id: int | None, subject_email: str | None
) -> Grant | None:
    """A pending or active grant for this pair (by patient, or by the email asked for)."""
    row = await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM grants g WHERE g.accessor_id = ?"
        " AND g.status IN ('pending', 'active')"
        " AND (g.subject_id = ? OR (g.subject_id IS NULL AND lower(g.subject_email) = lower(?)))",
        (accessor_id, subject_id, subject_email),
    )
    return _grant(row)


async def create(
    conn: Writes,
    *,
    accessor_id: int,
    subject_id: int | None,
    subject_email: str | None,
    subject_name: str | None,
    relationship: Relationship,
    relationship_other: str | None,
    level: Level,
    role: Role,
    expires_at: int | None,
    kind: GrantKind = GrantKind.REQUEST,
) -> Grant:
    row = await fetch_one(
        conn,
        "INSERT INTO grants (accessor_id, subject_id, subject_email, subject_name, relationship,"
        " relationship_other, level, role, status, requested_at, expires_at, kind)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
        f" RETURNING {_COLUMNS.replace('g.', '')}",
        (
            accessor_id,
            subject_id,
            subject_email,
            subject_name,
            relationship,
            relationship_other,
            level,
            role,
            now(),
            expires_at,
            kind,
        ),
    )
    grant = _grant(row)
    assert grant is not None
    return grant


async def decide(
    conn: Writes,
    grant_id: int,
    *,
    status: GrantStatus,
    decided_by: int,
    level: Level,
    role: Role,
) -> bool:
    """The one conditional write that decides a request: true for exactly one caller."""
    at = now()
    cur = await conn.execute(
        "UPDATE grants SET status = ?, decided_by = ?, decided_at = ?, level = ?, role = ?"
        " WHERE id = ? AND status = 'pending' AND (expires_at IS NULL OR expires_at > ?)"
        " AND subject_id IS NOT NULL",
        (status, decided_by, at, level, role, grant_id, at),
    )
    return cur.rowcount == 1


async def mark_notified(conn: Writes, grant_id: int) -> None:
    await conn.execute("UPDATE grants SET notified_at = ? WHERE id = ?", (now(), grant_id))


async def attach_email_requests(conn: Writes, patient_id: int, email: str) -> int:
    """Requests made to this email before the patient existed now point at the patient."""
    cur = await conn.execute(
        "UPDATE grants SET subject_id = ? WHERE subject_id IS NULL AND status = 'pending'"
        " AND lower(subject_email) = lower(?) AND accessor_id <> ?"
        " AND NOT EXISTS (SELECT 1 FROM grants o WHERE o.accessor_id = grants.accessor_id"
        "   AND o.subject_id = ? AND o.status IN ('pending', 'active'))",
        (patient_id, email, patient_id, patient_id),
    )
    return cur.rowcount


async def pending_for_subjects(
    conn: Reads, subject_ids: list[int], *, only_undelivered: bool = False
) -> list[AccessEntry]:
    """Requests waiting for a decision on these patients, with the requester's name."""
    if not subject_ids:
        return []
    marks = ",".join("?" * len(subject_ids))
    extra = " AND g.notified_at IS NULL" if only_undelivered else ""
    return await _entries(
        conn,
        _WITH_ACCESSOR_NAME
        + f" WHERE g.subject_id IN ({marks}) AND g.status = 'pending' AND g.kind = 'request'"
        f" AND (g.expires_at IS NULL OR g.expires_at > ?){extra} ORDER BY g.id",
        (*subject_ids, now()),
    )


async def accessible_by(conn: Reads, accessor_id: int) -> list[AccessEntry]:
    """Active grants this patient holds, with the subject's name."""
    return await _entries(
        conn,
        _WITH_SUBJECT_NAME
        + " WHERE g.accessor_id = ? AND g.status = 'active' ORDER BY p.full_name, g.id",
        (accessor_id,),
    )


async def _entries(conn: Reads, sql: str, params: tuple[object, ...]) -> list[AccessEntry]:
    """What `sql` selects (the grant's columns and an `other_name`), as access entries."""
    return [_entry(row) for row in await fetch_all(conn, sql, params)]


def _entry(row: Record) -> AccessEntry:
    data = dict(row)
    other = data.pop("other_name")
    return AccessEntry(grant=Grant.model_validate(data), other_name=other)


async def latest_between(conn: Reads, accessor_id: int, subject_id: int) -> Grant | None:
    """The most recent grant between two patients, whatever its status."""
    row = await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM grants g WHERE g.accessor_id = ? AND g.subject_id = ?"
        " ORDER BY g.id DESC LIMIT 1",
        (accessor_id, subject_id),
    )
    return _grant(row)


async def end(
    conn: Writes, grant_id: int, *, from_status: GrantStatus, by: int, reason: EndReason
) -> bool:
    """Revoke or leave an active grant, or withdraw a pending one: one conditional write.
    The status becomes REVOKED either way; `reason` says which it was."""
    cur = await conn.execute(
        "UPDATE grants SET status = 'revoked', end_reason = ?, decided_by = ?, decided_at = ?"
        " WHERE id = ? AND status = ?",
        (reason, by, now(), grant_id, from_status),
    )
    return cur.rowcount == 1


async def change(conn: Writes, grant_id: int, *, level: str, role: str, by: int) -> bool:
    cur = await conn.execute(
        "UPDATE grants SET level = ?, role = ?, decided_by = ?, decided_at = ?"
        " WHERE id = ? AND status = 'active'",
        (level, role, by, now(), grant_id),
    )
    return cur.rowcount == 1


async def accessors_of(conn: Reads, subject_id: int) -> list[AccessEntry]:
    """Active grants on this patient, with the accessor's name."""
    return await _entries(
        conn,
        _WITH_ACCESSOR_NAME
        + " WHERE g.subject_id = ? AND g.status = 'active' ORDER BY p.full_name, g.id",
        (subject_id,),
    )


async def outgoing_pending(conn: Reads, accessor_id: int) -> list[AccessEntry]:
    """Requests this patient made that wait for a decision; the name is the one they typed."""
    return await _entries(
        conn,
        f"SELECT {_COLUMNS}, COALESCE(g.subject_name, g.subject_email) AS other_name"
        " FROM grants g WHERE g.accessor_id = ? AND g.status = 'pending' AND g.kind = 'request'"
        " AND (g.expires_at IS NULL OR g.expires_at > ?) ORDER BY g.id",
        (accessor_id, now()),
    )


async def lapse_offers_for(conn: Writes, subject_id: int) -> int:
    """Offers of this patient's access made by their holder end: they count only while the
    holder decides (see offers_for), and signing out must not bring them back."""
    cur = await conn.execute(
        "UPDATE grants SET status = 'expired', decided_at = ?"
        " WHERE subject_id = ? AND kind = 'offer' AND status = 'pending'",
        (now(), subject_id),
    )
    return cur.rowcount


async def offers_for(conn: Reads, accessor_id: int) -> list[AccessEntry]:
    """Offers to this patient (someone sharing a dependent) that wait for their answer."""
    return await _entries(
        conn,
        _WITH_SUBJECT_NAME
        + " WHERE g.accessor_id = ? AND g.status = 'pending' AND g.kind = 'offer'"
        " AND (g.expires_at IS NULL OR g.expires_at > ?)"
        # An offer lapses once the dependent has their own login: they decide now.
        " AND NOT EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = g.subject_id)"
        " ORDER BY g.id",
        (accessor_id, now()),
    )
