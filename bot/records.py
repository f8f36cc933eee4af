"""Pages of a patient's portal data, for the views. Access is checked by bot.access first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from storage import Database, patients, portal
from storage.db import now
from storage.models import Appointment, ClinicalRecord, Invoice, Patient

PAGE_SIZE = 5
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    has_more: bool


def _page(rows: list[T], number: int) -> Page[T]:
    return Page(rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE)


def page_of(items: Sequence[T], number: int, size: int) -> Page[T]:
    """Page `number` (from 0) of a list already read whole. A number past the end (a
    button older than the list, which has shrunk since) gives the last page."""
    last = max(0, (len(items) - 1) // size)
    number = min(max(number, 0), last)
    start = number * size
    return Page(list(items[start : start + size]), number, number < last)


async def appointments(
    db: Database, subject_id: int, *, past: bool, number: int
) -> Page[Appointment]:
    query = portal.past_appointments if past else portal.upcoming_appointments
    async with db.read() as conn:
        rows = await query(conn, subject_id, now(), number * PAGE_SIZE, PAGE_SIZE + 1)
    return _page(rows, number)


async def invoices(db: Database, subject_id: int, *, number: int) -> Page[Invoice]:
    async with db.read() as conn:
        rows = await portal.invoices_page(conn, subject_id, number * PAGE_SIZE, PAGE_SIZE + 1)
    return _page(rows, number)


async def clinical_records(db: Database, subject_id: int, *, number: int) -> Page[ClinicalRecord]:
    async with db.read() as conn:
        rows = await portal.records_page(conn, subject_id, number * PAGE_SIZE, PAGE_SIZE + 1)
    return _page(rows, number)


async def appointment(db: Database, appointment_id: int) -> Appointment | None:
    async with db.read() as conn:
        return await portal.get_appointment(conn, appointment_id)


async def holder_of(db: Database, patient: Patient) -> Patient | None:
    if patient.holder_id is None:
        return None
    async with db.read() as conn:
        return await patients.get(conn, patient.holder_id)
