"""Telegram users signed in to a patient account."""

from __future__ import annotations

from storage.db import Reads, Writes, fetch_all, fetch_one, now
from storage.models import Grant, Identity, Login, LoginView, Patient, Row

_COLUMNS = "telegram_user_id, patient_id, locale, created_at, current_subject_id"


async def get(conn: Reads, telegram_user_id: int) -> Login | None:
    row = await fetch_one(
        conn, f"SELECT {_COLUMNS} FROM logins WHERE telegram_user_id = ?", (telegram_user_id,)
    )
    return Login.model_validate(dict(row)) if row else None


async def for_patient(conn: Reads, patient_id: int) -> Login | None:
    row = await fetch_one(
        conn, f"SELECT {_COLUMNS} FROM logins WHERE patient_id = ?", (patient_id,)
    )
    return Login.model_validate(dict(row)) if row else None


async def create(conn: Writes, telegram_user_id: int, patient_id: int, locale: str | None) -> Login:
    await conn.execute(
        "INSERT INTO logins (telegram_user_id, patient_id, locale, created_at) VALUES (?, ?, ?, ?)",
        (telegram_user_id, patient_id, locale, now()),
    )
    login = await get(conn, telegram_user_id)
    assert login is not None
    return login


async def delete(conn: Writes, telegram_user_id: int, patient_id: int, since: int | None) -> bool:
    """Remove this login, if it still connects this Telegram user to this patient (and, with
    `since`, is still the sign-in made then): true for exactly one caller."""
    cur = await conn.execute(
        "DELETE FROM logins WHERE telegram_user_id = ? AND patient_id = ?"
        " AND (CAST(? AS BIGINT) IS NULL OR created_at = ?)",
        (telegram_user_id, patient_id, since, since),
    )
    return cur.rowcount == 1


async def signed_in_patients(
    conn: Reads, *, email: str | None = None, name: str | None = None, limit: int = 5
) -> list[tuple[Patient, Login]]:
    """Patients with a login, found by email or by full name (either ignoring ASCII case)."""
    rows = await fetch_all(
        conn,
        f"SELECT {_select('p', Patient)}, {_select('l', Login)}"
        " FROM patients p JOIN logins l ON l.patient_id = p.id"
        " WHERE lower(p.email) = lower(:email) OR lower(p.full_name) = lower(:name)"
        " ORDER BY p.id LIMIT :limit",
        {"email": email, "name": name, "limit": limit},
    )
    found = []
    for row in rows:
        data = dict(row)
        patient, login = _pick(data, "p", Patient), _pick(data, "l", Login)
        found.append((Patient.model_validate(patient), Login.model_validate(login)))
    return found


async def set_locale(conn: Writes, telegram_user_id: int, locale: str) -> None:
    await conn.execute(
        "UPDATE logins SET locale = ? WHERE telegram_user_id = ?", (locale, telegram_user_id)
    )


async def set_current_subject(conn: Writes, telegram_user_id: int, subject_id: int | None) -> None:
    """None means the login's own portal."""
    await conn.execute(
        "UPDATE logins SET current_subject_id = ? WHERE telegram_user_id = ?",
        (subject_id, telegram_user_id),
    )


async def forget_subject(conn: Writes, telegram_user_id: int, subject_id: int) -> None:
    """Back to the login's own portal, unless the choice has changed since it was read."""
    await conn.execute(
        "UPDATE logins SET current_subject_id = NULL"
        " WHERE telegram_user_id = ? AND current_subject_id = ?",
        (telegram_user_id, subject_id),
    )


# --- Who is asking, in one statement ---------------------------------------------------------
# Every update starts with these lookups, so each is a single statement: one query plan
# and one step into SQLite instead of one per table.


def _select(alias: str, model: type[Row]) -> str:
    return ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in model.model_fields)


def _pick(row: dict[str, object], alias: str, model: type[Row]) -> dict[str, object] | None:
    """The columns of one joined table, or None when the LEFT JOIN found no row (each
    model's first field is its table's key, never NULL in a row that exists)."""
    columns = _PICKED.get((alias, model)) or _picked(alias, model)
    if row[columns[0][1]] is None:
        return None
    return {name: row[column] for name, column in columns}


# (field, column) per alias and model, made once: a few lookups on every update, and
# reading pydantic's model_fields costs a property call (~1 µs) each time.
_PICKED: dict[tuple[str, type[Row]], tuple[tuple[str, str], ...]] = {}


def _picked(alias: str, model: type[Row]) -> tuple[tuple[str, str], ...]:
    found = _PICKED[(alias, model)] = tuple((n, f"{alias}_{n}") for n in model.model_fields)
    return found


# Built once: these run on every update.
_IDENTITY = (
    f"SELECT {_select('l', Login)}, {_select('p', Patient)},"
    " EXISTS (SELECT 1 FROM practitioners WHERE telegram_user_id = :user) AS practitioner,"
    " EXISTS (SELECT 1 FROM outbox WHERE status = 'held' AND chat_id = :user) AS held"
    " FROM (SELECT CAST(:user AS BIGINT) AS asking) q"
    " LEFT JOIN logins l ON l.telegram_user_id = q.asking"
    " LEFT JOIN patients p ON p.id = l.patient_id"
)
_WITH_SUBJECT = (
    f"SELECT {_select('l', Login)}, {_select('m', Patient)}, {_select('s', Patient)},"
    f" {_select('g', Grant)}"
    " FROM logins l JOIN patients m ON m.id = l.patient_id"
    " LEFT JOIN patients s ON s.id = COALESCE(:subject, l.current_subject_id, l.patient_id)"
    " LEFT JOIN grants g ON g.accessor_id = m.id AND g.subject_id = s.id"
    "   AND g.status = 'active'"
    " WHERE l.telegram_user_id = :user"
)


async def identity(conn: Reads, telegram_user_id: int) -> Identity:
    """The login, its patient, whether this Telegram user is a practitioner, and whether
    the outbox holds messages for their chat (storage/outbox.py has_held)."""
    found = await fetch_one(conn, _IDENTITY, {"user": telegram_user_id})
    assert found is not None  # the FROM clause always yields exactly one row
    row = dict(found)  # by name in O(1): sqlite3.Row looks a name up column by column
    login, patient = _pick(row, "l", Login), _pick(row, "p", Patient)
    return Identity(
        login=Login.model_validate(login) if login else None,
        patient=Patient.model_validate(patient) if patient else None,
        is_practitioner=bool(row["practitioner"]),
        has_held=bool(row["held"]),
    )


async def with_subject(
    conn: Reads, telegram_user_id: int, subject_id: int | None
) -> LoginView | None:
    """The login with `subject_id` (None: the subject it chose last, else its own patient)
    and the active grant between the two; None when this Telegram user has no login."""
    found = await fetch_one(conn, _WITH_SUBJECT, {"user": telegram_user_id, "subject": subject_id})
    if found is None:
        return None
    row = dict(found)
    subject, grant = _pick(row, "s", Patient), _pick(row, "g", Grant)
    return LoginView(
        login=Login.model_validate(_pick(row, "l", Login)),
        me=Patient.model_validate(_pick(row, "m", Patient)),
        subject=Patient.model_validate(subject) if subject else None,
        grant=Grant.model_validate(grant) if grant else None,
    )
