"""Patient accounts."""

from __future__ import annotations

import datetime as dt

from storage.db import Reads, Record, Writes, fetch_all, fetch_one, now
from storage.models import Patient

_COLUMNS = "id, full_name, date_of_birth, email, created_at, holder_id"


def _patient(row: Record | None) -> Patient | None:
    return Patient.model_validate(dict(row)) if row else None


async def get(conn: Reads, patient_id: int) -> Patient | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM patients WHERE id = ?", (patient_id,))
    return _patient(row)


async def by_email(conn: Reads, email: str) -> Patient | None:
    row = await fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM patients WHERE lower(email) = lower(?)",
        (email.strip(),),
    )
    return _patient(row)


async def create(
    conn: Writes,
    full_name: str,
    date_of_birth: dt.date | None = None,
    email: str | None = None,
    holder_id: int | None = None,
) -> Patient:
    row = await fetch_one(
        conn,
        "INSERT INTO patients (full_name, date_of_birth, email, created_at, holder_id)"
        f" VALUES (?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
        (full_name, date_of_birth.isoformat() if date_of_birth else None, email, now(), holder_id),
    )
    patient = _patient(row)
    assert patient is not None
    return patient


async def get_or_create_by_email(
    conn: Writes,
    full_name: str,
    date_of_birth: dt.date | None,
    email: str | None,
) -> tuple[Patient, bool]:
    """The practice invites people, not addresses: an email we know means the same patient."""
    if email:
        existing = await by_email(conn, email)
        if existing:
            return existing, False
    return await create(conn, full_name, date_of_birth, email), True


async def fill_date_of_birth(conn: Writes, patient_id: int, date_of_birth: dt.date) -> None:
    """Record a date of birth the patient had none of; one on record is never replaced."""
    await conn.execute(
        "UPDATE patients SET date_of_birth = ? WHERE id = ? AND date_of_birth IS NULL",
        (date_of_birth.isoformat(), patient_id),
    )


async def release_from_holder(conn: Writes, patient_id: int) -> None:
    """A dependent who had their own login decides for themself, also once signed out: the
    patient who created their account does not get that back."""
    await conn.execute("UPDATE patients SET holder_id = NULL WHERE id = ?", (patient_id,))


async def held_by(conn: Reads, holder_id: int) -> list[Patient]:
    """Dependents this patient decides for: created by them and without a login of their own."""
    rows = await fetch_all(
        conn,
        f"SELECT {_COLUMNS} FROM patients p WHERE p.holder_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM logins l WHERE l.patient_id = p.id) ORDER BY id",
        (holder_id,),
    )
    return [Patient.model_validate(dict(row)) for row in rows]


async def named(conn: Reads, full_name: str, limit: int) -> list[Patient]:
    """Patients with this full name, ignoring case (as `python -m bot invite` spelled it),
    oldest account first. A scan, as /unlink's look-up by name: only a practitioner asks,
    now and then, and an index would cost every write of a patient a page."""
    rows = await fetch_all(
        conn,
        f"SELECT {_COLUMNS} FROM patients WHERE lower(full_name) = lower(?) ORDER BY id LIMIT ?",
        (full_name, limit),
    )
    return [Patient.model_validate(dict(row)) for row in rows]
