"""What the practice's policy (bot/policy.py) stores: when access began and ends, the young
person's decisions, each change made once (policy_steps), and the sweep's lookups.

Every change here is one conditional write: true for exactly one caller, whichever worker
or retry gets there first."""

from __future__ import annotations

from storage.db import Reads, Record, Writes, fetch_all, fetch_one, now
from storage.grants import _COLUMNS as _GRANT_COLUMNS
from storage.grants import _entry
from storage.models import AccessEntry, Grant, Patient
from storage.patients import _COLUMNS as _PATIENT_COLUMNS


async def begin(conn: Writes, grant_id: int, began_at: int, ends_at: int | None) -> None:
    """Access that has just begun: when, and its end date (None: none)."""
    await conn.execute(
        "UPDATE grants SET began_at = ?, ends_at = ? WHERE id = ?", (began_at, ends_at, grant_id)
    )


async def give_end_date(conn: Writes, grant_id: int, ends_at: int) -> bool:
    """An end date for active access that has none yet."""
    cur = await conn.execute(
        "UPDATE grants SET ends_at = ? WHERE id = ? AND status = 'active' AND ends_at IS NULL",
        (ends_at, grant_id),
    )
    return cur.rowcount == 1


async def renew(conn: Writes, grant_id: int, ends_at: int, was: int | None) -> bool:
    """A new end date for active access, if its end date is still `was` (a second tap on
    the same Renew changes nothing)."""
    cur = await conn.execute(
        "UPDATE grants SET ends_at = ? WHERE id = ? AND status = 'active'"
        " AND ends_at IS NOT DISTINCT FROM ?",
        (ends_at, grant_id, was),
    )
    return cur.rowcount == 1


async def keep(conn: Writes, grant_id: int, ends_at: int | None) -> bool:
    """The young person keeps this access past their adult age (from then on it ends at
    `ends_at`, a term from that birthday)."""
    cur = await conn.execute(
        "UPDATE grants SET kept_at = ?, ends_at = ? WHERE id = ? AND status = 'active'"
        " AND kept_at IS NULL",
        (now(), ends_at, grant_id),
    )
    return cur.rowcount == 1


async def mark_continued(conn: Writes, grant_id: int) -> bool:
    cur = await conn.execute(
        "UPDATE grants SET continued_at = ? WHERE id = ? AND status = 'active'"
        " AND continued_at IS NULL",
        (now(), grant_id),
    )
    return cur.rowcount == 1


async def expire(conn: Writes, grant_id: int) -> bool:
    """Active access the policy has ended (an age, an end date): 'expired', as a request
    left undecided is."""
    cur = await conn.execute(
        "UPDATE grants SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'active'",
        (now(), grant_id),
    )
    return cur.rowcount == 1


async def end_by_practice(conn: Writes, grant_id: int, from_status: str) -> bool:
    """Ended for the patient by the practice (suspended) or by the patient's "stop all
    access": 'revoked', without naming a patient who did it."""
    cur = await conn.execute(
        "UPDATE grants SET status = 'revoked', end_reason = 'revoked', decided_at = ?"
        " WHERE id = ? AND status = ?",
        (now(), grant_id, from_status),
    )
    return cur.rowcount == 1


# --- Each change once ---------------------------------------------------------------------


async def take_step(
    conn: Writes,
    key: str,
    rule: str,
    due_at: int,
    *,
    grant_id: int | None = None,
    patient_id: int | None = None,
) -> bool:
    """Claim a change of the policy: true for the one transaction that makes it."""
    cur = await conn.execute(
        "INSERT INTO policy_steps (key, rule, grant_id, patient_id, due_at, done_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (key, rule, grant_id, patient_id, due_at, now()),
    )
    return cur.rowcount == 1


async def step_taken(conn: Reads, key: str) -> bool:
    row = await fetch_one(conn, "SELECT 1 FROM policy_steps WHERE key = ?", (key,))
    return row is not None


async def steps_for_grant(conn: Reads, grant_id: int) -> list[str]:
    rows = await fetch_all(
        conn, "SELECT key FROM policy_steps WHERE grant_id = ? ORDER BY due_at", (grant_id,)
    )
    return [row[0] for row in rows]


# --- The sweep's lookups ------------------------------------------------------------------

_SUBJECT = ", ".join(f"s.{c.strip()} AS s_{c.strip()}" for c in _PATIENT_COLUMNS.split(","))


def _days_from_civil(day: str) -> str:
    """SQL: the days from 1970-01-01 to the ISO date in `day` plus :years years, in integer
    arithmetic both dialects share (Howard Hinnant's days_from_civil). As SQLite's
    strftime('%s', day, '+N years') did, a 29 February lands on 1 March in a common year."""
    y = f"(CAST(substr({day}, 1, 4) AS BIGINT) + :years)"
    m = f"CAST(substr({day}, 6, 2) AS BIGINT)"
    d = f"CAST(substr({day}, 9, 2) AS BIGINT)"
    yy = f"({y} - CASE WHEN {m} <= 2 THEN 1 ELSE 0 END)"
    era = f"({yy} / 400)"
    yoe = f"({yy} - {era} * 400)"
    doy = f"((153 * ({m} + CASE WHEN {m} > 2 THEN -3 ELSE 9 END) + 2) / 5 + {d} - 1)"
    return f"({era} * 146097 + {yoe} * 365 + {yoe} / 4 - {yoe} / 100 + {doy} - 719468)"


def _comes_of_age(day: str) -> str:
    """SQL: the unix time a patient turns :years, from the date of birth in column `day`."""
    return f"({_days_from_civil(day)} * 86400)"


def _grant_and_subject(row: Record) -> tuple[Grant, Patient, bool]:
    data = dict(row)
    has_login = bool(data.pop("has_login"))
    subject = {name[2:]: data.pop(name) for name in list(data) if name.startswith("s_")}
    return Grant.model_validate(data), Patient.model_validate(subject), has_login


async def grants_to_sweep(
    conn: Reads,
    *,
    ends_by: int,
    majority: int,
    term: bool,
    after_id: int,
    limit: int,
) -> list[tuple[Grant, Patient, bool]]:
    """Active grants the policy may have something to do with, a page at a time (by id),
    each with its subject and whether the subject has a login: access that began before
    the subject turned `majority` (the age rules), and with the term on, access that ends
    by `ends_by` or has no end date though it began later or was kept. Roughly: birthdays
    here are UTC dates, two days' margin either way; the caller decides exactly."""
    rows = await fetch_all(
        conn,
        f"SELECT {_GRANT_COLUMNS}, {_SUBJECT},"
        " EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = s.id) AS has_login"
        " FROM grants g JOIN patients s ON s.id = g.subject_id"
        " WHERE g.status = 'active' AND g.id > :after AND ("
        "   (s.date_of_birth IS NOT NULL AND COALESCE(g.began_at, g.decided_at, g.requested_at)"
        f"     < {_comes_of_age('s.date_of_birth')} + 2 * 86400)"
        "   OR (:term = 1 AND g.ends_at IS NOT NULL AND g.ends_at <= :ends_by)"
        "   OR (:term = 1 AND g.ends_at IS NULL AND (s.date_of_birth IS NULL"
        "     OR g.kept_at IS NOT NULL OR COALESCE(g.began_at, g.decided_at, g.requested_at)"
        f"       >= {_comes_of_age('s.date_of_birth')} - 2 * 86400))"
        " ) ORDER BY g.id LIMIT :limit",
        {
            "after": after_id,
            "term": int(term),
            "ends_by": ends_by,
            "years": majority,
            "limit": limit,
        },
    )
    return [_grant_and_subject(row) for row in rows]


async def held_to_sweep(
    conn: Reads, *, majority: int, after_id: int, limit: int
) -> list[tuple[Patient, bool]]:
    """Patients held since before they turned `majority` (roughly, as above), with whether
    they have a login: their own login and the end of holdership are the policy's."""
    rows = await fetch_all(
        conn,
        f"SELECT {_PATIENT_COLUMNS},"
        " EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = p.id) AS has_login"
        " FROM patients p WHERE p.holder_id IS NOT NULL AND p.date_of_birth IS NOT NULL"
        f" AND p.created_at < {_comes_of_age('p.date_of_birth')} + 2 * 86400"
        " AND p.id > :after ORDER BY p.id LIMIT :limit",
        {"years": majority, "after": after_id, "limit": limit},
    )
    found = []
    for row in rows:
        data = dict(row)
        has_login = bool(data.pop("has_login"))
        found.append((Patient.model_validate(data), has_login))
    return found


async def practitioner_for(conn: Reads, patient_id: int | None) -> int | None:
    """The practitioner to ask about a patient: the one who last invited them, or else the
    first registered; None when the practice has none."""
    row = await fetch_one(
        conn,
        "SELECT i.invited_by FROM invites i"
        " JOIN practitioners p ON p.telegram_user_id = i.invited_by"
        " WHERE i.patient_id = ? ORDER BY i.id DESC LIMIT 1",
        (patient_id,),
    )
    if row is not None:
        return int(row[0])
    row = await fetch_one(
        conn, "SELECT telegram_user_id FROM practitioners ORDER BY created_at, telegram_user_id"
    )
    return int(row[0]) if row is not None else None


async def has_login(conn: Reads, patient_id: int) -> bool:
    row = await fetch_one(conn, "SELECT 1 FROM logins WHERE patient_id = ?", (patient_id,))
    return row is not None


async def open_on(conn: Reads, subject_id: int) -> list[AccessEntry]:
    """Every pending or active grant on this patient (requests, offers, access), with the
    accessor's name."""
    rows = await fetch_all(
        conn,
        f"SELECT {_GRANT_COLUMNS}, p.full_name AS other_name FROM grants g"
        " JOIN patients p ON p.id = g.accessor_id"
        " WHERE g.subject_id = ? AND g.status IN ('pending', 'active') ORDER BY g.id",
        (subject_id,),
    )
    return [_entry(row) for row in rows]


async def lower_to_administrative(conn: Writes, grant_id: int) -> bool:
    """The teen age: Clinical access is stored as what it has become (the check has
    limited it since the birthday), without counting as anyone's decision."""
    cur = await conn.execute(
        "UPDATE grants SET level = 'administrative' WHERE id = ? AND status = 'active'"
        " AND level = 'clinical'",
        (grant_id,),
    )
    return cur.rowcount == 1


async def restore_clinical(conn: Writes, grant_id: int) -> bool:
    """The young person approved Clinical access again."""
    cur = await conn.execute(
        "UPDATE grants SET level = 'clinical', clinical_ok_at = ? WHERE id = ?"
        " AND status = 'active' AND clinical_ok_at IS NULL",
        (now(), grant_id),
    )
    return cur.rowcount == 1


async def queued(conn: Reads, dedupe_key: str) -> bool:
    """A message with this dedupe key was queued before (for a dry run's report)."""
    row = await fetch_one(conn, "SELECT 1 FROM outbox WHERE dedupe_key = ?", (dedupe_key,))
    return row is not None
