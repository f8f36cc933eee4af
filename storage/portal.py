"""What a patient's portal shows: appointments, invoices and clinical records.

Page functions take an offset and a limit; callers ask for one row more than they show to
learn whether another page follows. Each page query is served in order by its index (see
migration 0003), so a page costs the same with a million rows as with ten.

The add_* functions double as an upsert: given a fhir_id that is already stored, they
update that row instead of adding a second one. The importer uses the sync_* functions,
which do the same and say whether the row was new, updated or already as the source has it.

An appointment with several patients is kept once per patient: the first patient's copy
under the appointment's own fhir_id, each other's under "<fhir_id>#<patient's fhir_id>".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel

# Aliased: the page functions take the caller's `now` as a parameter.
from storage.db import Reads, Rows, Writes, fetch_all, fetch_one
from storage.db import now as clock
from storage.models import Appointment, ClinicalRecord, Invoice, Patient
from storage.vocabulary import AppointmentStatus

_APPOINTMENT = (
    "id, patient_id, fhir_id, starts_at, ends_at, practitioner, location, status, updated_at"
)
_INVOICE = "id, patient_id, fhir_id, number, issued_on, amount_minor, currency, paid"
_RECORD = "id, patient_id, fhir_id, recorded_on, kind, title, details, measurement"
_PATIENT = "id, full_name, date_of_birth, email, created_at, holder_id"
M = TypeVar("M", bound=BaseModel)


def _check_page(offset: int, limit: int) -> None:
    # SQLite reads a negative LIMIT as "no limit": a bug upstream would fetch every row.
    if offset < 0 or limit <= 0:
        raise ValueError(f"bad page: offset={offset}, limit={limit}")


async def _page(
    conn: Reads, model: type[M], sql: str, params: tuple[object, ...], offset: int, limit: int
) -> list[M]:
    """One page of what `sql` selects in order (it ends before LIMIT), as `model`s."""
    _check_page(offset, limit)
    rows = await fetch_all(conn, sql + " LIMIT ? OFFSET ?", (*params, limit, offset))
    return [model.model_validate(dict(row)) for row in rows]


async def _by_id(conn: Reads, model: type[M], columns: str, table: str, row_id: int) -> M | None:
    row = await fetch_one(conn, f"SELECT {columns} FROM {table} WHERE id = ?", (row_id,))
    return model.model_validate(dict(row)) if row else None


# --- Appointments -----------------------------------------------------------------------


async def upcoming_appointments(
    conn: Reads, patient_id: int, now: int, offset: int, limit: int
) -> list[Appointment]:
    """Starting at or after `now`, soonest first."""
    when = "starts_at >= ? ORDER BY starts_at, id"
    return await _appointments(conn, when, patient_id, now, offset, limit)


async def past_appointments(
    conn: Reads, patient_id: int, now: int, offset: int, limit: int
) -> list[Appointment]:
    """Started before `now`, most recent first."""
    when = "starts_at < ? ORDER BY starts_at DESC, id DESC"
    return await _appointments(conn, when, patient_id, now, offset, limit)


async def _appointments(
    conn: Reads, when: str, patient_id: int, now: int, offset: int, limit: int
) -> list[Appointment]:
    """A page of the patient's appointments: `when` compares starts_at with `now`, and orders."""
    sql = f"SELECT {_APPOINTMENT} FROM appointments WHERE patient_id = ? AND {when}"
    return await _page(conn, Appointment, sql, (patient_id, now), offset, limit)


async def get_appointment(conn: Reads, appointment_id: int) -> Appointment | None:
    return await _by_id(conn, Appointment, _APPOINTMENT, "appointments", appointment_id)


async def set_appointment_status(
    conn: Writes,
    appointment_id: int,
    patient_id: int,
    from_statuses: tuple[str, ...],
    to_status: str,
) -> bool:
    """The one conditional write that changes a status: true for exactly one caller, so a
    double tap or a stale button cannot cancel twice or revive a cancelled appointment.
    The patient_id condition keeps an id from one patient's buttons off another's rows."""
    if not from_statuses:
        return False
    marks = ",".join("?" * len(from_statuses))
    cur = await conn.execute(
        f"UPDATE appointments SET status = ?, updated_at = ?"
        f" WHERE id = ? AND patient_id = ? AND status IN ({marks})",
        (to_status, clock(), appointment_id, patient_id, *from_statuses),
    )
    return cur.rowcount == 1


async def add_appointment(
    conn: Writes,
    patient_id: int,
    starts_at: int,
    ends_at: int,
    practitioner: str | None,
    location: str | None,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    fhir_id: str | None = None,
) -> Appointment:
    cur = await conn.execute(
        "INSERT INTO appointments (patient_id, fhir_id, starts_at, ends_at, practitioner,"
        " location, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (fhir_id) WHERE fhir_id IS NOT NULL DO UPDATE SET"
        " patient_id = excluded.patient_id, starts_at = excluded.starts_at,"
        " ends_at = excluded.ends_at, practitioner = excluded.practitioner,"
        " location = excluded.location, status = excluded.status,"
        " updated_at = excluded.updated_at"
        " RETURNING id",
        (patient_id, fhir_id, starts_at, ends_at, practitioner, location, status, clock()),
    )
    appointment = await get_appointment(conn, await _returned_id(cur))
    assert appointment is not None
    return appointment


# --- Invoices ---------------------------------------------------------------------------


async def invoices_page(conn: Reads, patient_id: int, offset: int, limit: int) -> list[Invoice]:
    """Newest first."""
    return await _page(
        conn,
        Invoice,
        f"SELECT {_INVOICE} FROM invoices WHERE patient_id = ? ORDER BY issued_on DESC, id DESC",
        (patient_id,),
        offset,
        limit,
    )


async def add_invoice(
    conn: Writes,
    patient_id: int,
    number: str,
    issued_on: dt.date,
    amount_minor: int,
    currency: str,
    paid: bool,
    fhir_id: str | None = None,
) -> Invoice:
    cur = await conn.execute(
        "INSERT INTO invoices (patient_id, fhir_id, number, issued_on, amount_minor, currency,"
        " paid) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (fhir_id) WHERE fhir_id IS NOT NULL DO UPDATE SET"
        " patient_id = excluded.patient_id, number = excluded.number,"
        " issued_on = excluded.issued_on, amount_minor = excluded.amount_minor,"
        " currency = excluded.currency, paid = excluded.paid"
        " RETURNING id",
        (
            patient_id,
            fhir_id,
            number,
            issued_on.isoformat(),
            amount_minor,
            currency,
            int(paid),
        ),
    )
    invoice = await _by_id(conn, Invoice, _INVOICE, "invoices", await _returned_id(cur))
    assert invoice is not None
    return invoice


# --- Clinical records -------------------------------------------------------------------


async def records_page(
    conn: Reads, patient_id: int, offset: int, limit: int
) -> list[ClinicalRecord]:
    """Newest first."""
    return await _page(
        conn,
        ClinicalRecord,
        f"SELECT {_RECORD} FROM clinical_records WHERE patient_id = ?"
        " ORDER BY recorded_on DESC, id DESC",
        (patient_id,),
        offset,
        limit,
    )


async def add_record(
    conn: Writes,
    patient_id: int,
    recorded_on: dt.date | None,
    kind: str,
    title: str,
    details: str,
    fhir_id: str | None = None,
) -> ClinicalRecord:
    cur = await conn.execute(
        "INSERT INTO clinical_records (patient_id, fhir_id, recorded_on, kind, title, details)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (fhir_id) WHERE fhir_id IS NOT NULL DO UPDATE SET"
        " patient_id = excluded.patient_id, recorded_on = excluded.recorded_on,"
        " kind = excluded.kind, title = excluded.title, details = excluded.details"
        " RETURNING id",
        (
            patient_id,
            fhir_id,
            recorded_on.isoformat() if recorded_on else None,
            kind,
            title,
            details,
        ),
    )
    record = await _by_id(
        conn, ClinicalRecord, _RECORD, "clinical_records", await _returned_id(cur)
    )
    assert record is not None
    return record


# --- Links to the FHIR source -----------------------------------------------------------


async def patient_by_fhir_id(conn: Reads, fhir_id: str) -> Patient | None:
    row = await fetch_one(conn, f"SELECT {_PATIENT} FROM patients WHERE fhir_id = ?", (fhir_id,))
    return Patient.model_validate(dict(row)) if row else None


async def fhir_id_of_patient(conn: Reads, patient_id: int) -> str | None:
    row = await fetch_one(conn, "SELECT fhir_id FROM patients WHERE id = ?", (patient_id,))
    return row[0] if row else None


async def update_patient_from_source(
    conn: Writes,
    patient_id: int,
    *,
    fhir_id: str,
    full_name: str,
    date_of_birth: dt.date | None,
    email: str | None,
    deceased: bool = False,
    deceased_on: dt.date | None = None,
) -> bool:
    """The practice's system is the source of truth for these fields; a field it leaves
    out keeps what the portal had (e.g. an email the practitioner typed into /invite).
    Only the source records a death, so its word stands either way. True if anything
    changed."""
    cur = await conn.execute(
        "UPDATE patients SET (fhir_id, full_name, date_of_birth, email, deceased, deceased_on)"
        " = (?1, ?2, coalesce(?3, date_of_birth), coalesce(?4, email), ?5, ?6) WHERE id = ?7"
        " AND (fhir_id, full_name, date_of_birth, email, deceased, deceased_on)"
        " IS DISTINCT FROM (?1, ?2, coalesce(?3, date_of_birth), coalesce(?4, email), ?5, ?6)",
        (
            fhir_id,
            full_name,
            date_of_birth.isoformat() if date_of_birth else None,
            email,
            int(deceased),
            deceased_on.isoformat() if deceased_on else None,
            patient_id,
        ),
    )
    return cur.rowcount > 0


async def forget_fhir(conn: Writes, fhir_id: str) -> int:
    """Drop an appointment, invoice or record the source has withdrawn (entered in error,
    cancelled invoices), with an appointment's copies for its other patients; ids are
    unique per type, so at most one table has it."""
    removed = 0
    for table in _FROM_SOURCE:
        cur = await conn.execute(f"DELETE FROM {table} WHERE fhir_id = ?", (fhir_id,))
        removed += cur.rowcount
    return removed + await forget_appointment_copies(conn, fhir_id, keep=())


async def forget_appointment_copies(conn: Writes, fhir_id: str, keep: Collection[str]) -> int:
    """Drop the copies of an appointment kept for patients it no longer lists."""
    # "#" sorts just before "$": the range is every "<fhir_id>#…", read off the index.
    copies = await fetch_all(
        conn,
        "SELECT fhir_id FROM appointments WHERE fhir_id >= ? AND fhir_id < ?",
        (fhir_id + "#", fhir_id + "$"),
    )
    removed = 0
    for (copy,) in copies:
        if copy not in keep:
            cur = await conn.execute("DELETE FROM appointments WHERE fhir_id = ?", (copy,))
            removed += cur.rowcount
    return removed


# --- The importer's writes --------------------------------------------------------------

Outcome = Literal["new", "updated", "unchanged"]
_FROM_SOURCE = ("appointments", "invoices", "clinical_records")


async def sync_appointment(
    conn: Writes,
    fhir_id: str,
    patient_id: int,
    starts_at: int,
    ends_at: int,
    practitioner: str | None,
    location: str | None,
    status: str,
) -> Outcome:
    values = {
        "patient_id": patient_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "practitioner": practitioner,
        "location": location,
        "status": status,
    }
    return await _sync(conn, "appointments", fhir_id, values, {"updated_at": clock()})


async def sync_invoice(
    conn: Writes,
    fhir_id: str,
    patient_id: int,
    number: str,
    issued_on: dt.date,
    amount_minor: int,
    currency: str,
    paid: bool,
) -> Outcome:
    values = {
        "patient_id": patient_id,
        "number": number,
        "issued_on": issued_on.isoformat(),
        "amount_minor": amount_minor,
        "currency": currency,
        "paid": int(paid),
    }
    return await _sync(conn, "invoices", fhir_id, values)


async def sync_record(
    conn: Writes,
    fhir_id: str,
    patient_id: int,
    recorded_on: dt.date | None,
    kind: str,
    title: str,
    details: str,
    measurement: str | None,
) -> Outcome:
    values = {
        "patient_id": patient_id,
        "recorded_on": recorded_on.isoformat() if recorded_on else None,
        "kind": kind,
        "title": title,
        "details": details,
        "measurement": measurement,
    }
    return await _sync(conn, "clinical_records", fhir_id, values)


async def _sync(
    conn: Writes,
    table: str,
    fhir_id: str,
    values: Mapping[str, object],
    on_write: Mapping[str, object] | None = None,
) -> Outcome:
    """The row imported from fhir_id, added or brought up to date; `values` are as SQLite
    stores them, so that an unchanged row compares equal and is not written."""
    assert table in _FROM_SOURCE
    columns = list(values)
    found = await fetch_one(
        conn, f"SELECT {', '.join(columns)} FROM {table} WHERE fhir_id = ?", (fhir_id,)
    )
    if found is not None and tuple(found) == tuple(values.values()):
        return "unchanged"
    written = {**values, **(on_write or {})}
    if found is None:
        names = ", ".join(["fhir_id", *written])
        marks = ", ".join("?" * (len(written) + 1))
        await conn.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", (fhir_id, *written.values())
        )
        return "new"
    assignments = ", ".join(f"{name} = ?" for name in written)
    await conn.execute(
        f"UPDATE {table} SET {assignments} WHERE fhir_id = ?", (*written.values(), fhir_id)
    )
    return "updated"


async def _returned_id(cur: Rows) -> int:
    # fetchall, not fetchone: the statement must run to completion before COMMIT.
    rows = list(await cur.fetchall())
    assert len(rows) == 1
    return int(rows[0][0])
