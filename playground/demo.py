"""A made-up family to try the bot with: a parent with two children, a partner asking for
access, and a year of appointments, invoices and records. Nobody here is a real person.

Everything is written in one transaction, so a failure leaves no half-made family behind,
and a second run finds Sam's email and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot import access, invitations
from bot.access import AccessRequest
from bot.tokens import deep_link
from storage import Database, clock, patients, portal, practitioners
from storage.db import Writes
from storage.models import Patient
from storage.vocabulary import AppointmentStatus, Level, Relationship, Role

PRACTITIONER = "Dr Maya Okafor"
DEFAULT_TZ = zoneinfo.ZoneInfo("Australia/Sydney")


@dataclass(frozen=True)
class DemoPerson:
    full_name: str
    date_of_birth: dt.date
    email: str | None = None


@dataclass(frozen=True)
class DemoChild:
    """A child of the demo family, always this old on the day the demo is made: a fixed
    date of birth would meet the practice's age rules (issue #20) as the years pass, and
    the demo would show another family (Lily's Clinical access limited at 12, say)."""

    full_name: str
    age: int
    birthday: tuple[int, int]  # month, day

    def date_of_birth(self, today: dt.date) -> dt.date:
        month, day = self.birthday
        year = today.year - self.age - (1 if (today.month, today.day) < (month, day) else 0)
        return dt.date(year, month, day)


SAM = DemoPerson("Sam Rivera", dt.date(1986, 4, 12), "sam.rivera@example.com")
ALEX = DemoPerson("Alex Chen", dt.date(1985, 11, 30), "alex.chen@example.com")
LILY = DemoChild("Lily Rivera", 10, (9, 3))  # born 3 Sept 2015, made on 2 Mar 2026
NOAH = DemoChild("Noah Rivera", 7, (1, 22))  # born 22 Jan 2019, made on 2 Mar 2026
# Who gets an invite link, by the label DemoResult.links uses.
INVITED = {"parent": SAM, "partner": ALEX}


@dataclass(frozen=True)
class DemoResult:
    created: bool
    links: dict[str, str] = field(default_factory=dict)  # role label -> deep link


async def seed_demo(
    db: Database,
    *,
    bot_username: str,
    ttl_days: int,
    practitioner_telegram_id: int | None = None,
    today: dt.date | None = None,
    tz: dt.tzinfo = DEFAULT_TZ,
) -> DemoResult:
    """Create the demo family, or report that it is there already (created=False).
    Dates are relative to `today`, so a fresh demo always has appointments ahead."""
    today = today or clock.today(tz)
    async with db.transaction() as conn:
        if SAM.email and await patients.by_email(conn, SAM.email) is not None:
            return DemoResult(created=False)
        inner = _Savepoints(conn)
        if practitioner_telegram_id is not None:
            await practitioners.upsert(conn, practitioner_telegram_id, PRACTITIONER)
        links: dict[str, str] = {}
        invited: dict[str, Patient] = {}
        for label, person in INVITED.items():
            new = await invitations.create_invite(
                inner,
                invitations.InviteRequest(person.full_name, person.date_of_birth, person.email),
                ttl_days,
                invited_by=practitioner_telegram_id,
            )
            links[label] = deep_link(bot_username, new.token)
            invited[label] = new.patient
        sam, alex = invited["parent"], invited["partner"]
        lily, _ = await access.create_dependent(
            inner,
            sam.id,
            LILY.full_name,
            LILY.date_of_birth(today),
            AccessRequest(LILY.full_name, Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
        )
        noah, _ = await access.create_dependent(
            inner,
            sam.id,
            NOAH.full_name,
            NOAH.date_of_birth(today),
            AccessRequest(NOAH.full_name, Relationship.SON, None, Level.ADMINISTRATIVE, Role.VIEW),
        )
        assert SAM.email is not None
        await access.request_by_email(
            inner,
            alex.id,
            SAM.email,
            AccessRequest(SAM.full_name, Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW),
            ttl_days,
        )
        number = _FIRST_INVOICE
        for patient, history in ((sam, _SAM), (lily, _LILY), (noah, _NOAH)):
            number = await _add_history(conn, patient.id, history, today, tz, number)
    return DemoResult(created=True, links=links)


class _Savepoints(Database):
    """The demo's one transaction, lent to functions that open their own (create_invite,
    create_dependent, request_by_email): each of theirs becomes a savepoint inside it, so
    their rules are reused unchanged and a failure anywhere still undoes everything."""

    def __init__(self, conn: Writes) -> None:
        super().__init__(":borrowed:")
        self._outer = conn

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass  # the connection belongs to the outer Database

    # `change` (whether users see the commit as a change) is the outer transaction's to
    # tell; taken here so that every caller of Database can lend this one.
    @asynccontextmanager
    async def transaction(self, *, change: bool = True) -> AsyncIterator[Writes]:
        conn = self._outer
        await conn.execute("SAVEPOINT demo_step")
        try:
            yield conn
        except BaseException:
            await conn.execute("ROLLBACK TO demo_step")
            await conn.execute("RELEASE demo_step")
            raise
        else:
            await conn.execute("RELEASE demo_step")

    @asynccontextmanager
    async def statement(self, *, change: bool = True) -> AsyncIterator[Writes]:
        yield self._outer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Writes]:
        yield self._outer


# --- The family's history --------------------------------------------------------------

GP2 = "Dr Tom Hartley"
PAEDIATRICIAN = "Dr Ines Moreau"
NURSE = "Priya Nair (practice nurse)"
PHYSIO = "Ben Walsh (physiotherapist)"


@dataclass(frozen=True)
class _Visit:
    days: int  # from today; negative is past
    at: str  # local time, HH:MM
    minutes: int
    practitioner: str
    location: str
    status: str = "booked"
    fee_cents: int | None = None  # past visits: the invoice it produced


@dataclass(frozen=True)
class _Record:
    days_ago: int
    kind: str
    title: str
    details: str


@dataclass(frozen=True)
class _History:
    visits: tuple[_Visit, ...]
    records: tuple[_Record, ...]
    unpaid: int  # how many of the most recent invoices are still open


_SAM = _History(
    visits=(
        _Visit(-340, "08:30", 15, PRACTITIONER, "Consult Room 1", "confirmed", 9500),
        _Visit(-280, "17:15", 30, PHYSIO, "Physio Studio", "confirmed", 11000),
        _Visit(-266, "17:15", 30, PHYSIO, "Physio Studio", "confirmed", 11000),
        _Visit(-200, "09:00", 10, NURSE, "Treatment Room", "confirmed", 3500),
        _Visit(-95, "12:40", 30, PRACTITIONER, "Consult Room 1", "confirmed", 16500),
        _Visit(-61, "08:00", 15, NURSE, "Treatment Room", "confirmed", 4500),
        _Visit(-30, "16:20", 15, GP2, "Consult Room 3", "confirmed", 9500),
        _Visit(3, "09:15", 15, PRACTITIONER, "Consult Room 1", "confirmed"),
        _Visit(10, "07:45", 30, PHYSIO, "Physio Studio"),
        _Visit(24, "07:45", 30, PHYSIO, "Physio Studio"),
        _Visit(45, "11:00", 20, GP2, "Telehealth (video call)"),
        _Visit(90, "10:30", 15, NURSE, "Treatment Room"),
        _Visit(180, "09:00", 30, PRACTITIONER, "Consult Room 1"),
    ),
    records=(
        _Record(1500, "condition", "Mild intermittent asthma", "Active"),
        _Record(900, "immunisation", "Diphtheria, tetanus and pertussis (dTpa)", "Completed"),
        _Record(400, "immunisation", "COVID-19 vaccine booster", "Completed, lot CV4471"),
        _Record(330, "allergy", "Penicillin", "Low criticality, hives"),
        _Record(200, "immunisation", "Influenza vaccine", "Completed, lot FL2291"),
        _Record(60, "result", "HbA1c", "5.4 %"),
        _Record(60, "result", "Total cholesterol", "4.8 mmol/L"),
        _Record(60, "result", "Vitamin D (25-OH)", "62 nmol/L"),
        _Record(30, "result", "Blood pressure", "118/76 mmHg"),
        _Record(30, "note", "Asthma review", "Action plan updated; no change to medicines"),
    ),
    unpaid=2,
)

_LILY = _History(
    visits=(
        _Visit(-360, "15:30", 30, PAEDIATRICIAN, "Consult Room 4", "confirmed", 21000),
        _Visit(-250, "16:00", 15, PRACTITIONER, "Consult Room 1", "confirmed", 9500),
        _Visit(-180, "15:45", 10, NURSE, "Treatment Room", "confirmed", 3500),
        _Visit(-120, "16:10", 15, PRACTITIONER, "Consult Room 2", "confirmed", 9500),
        _Visit(-75, "15:30", 30, PAEDIATRICIAN, "Consult Room 4", "confirmed", 21000),
        _Visit(-40, "16:30", 15, GP2, "Consult Room 3", "confirmed", 9500),
        _Visit(-12, "15:50", 15, PRACTITIONER, "Consult Room 1", "confirmed", 9500),
        _Visit(2, "16:00", 15, PRACTITIONER, "Consult Room 1", "confirmed"),
        _Visit(9, "15:30", 30, PAEDIATRICIAN, "Consult Room 4", "cancelled"),
        _Visit(16, "15:30", 30, PAEDIATRICIAN, "Consult Room 4"),
        _Visit(38, "16:15", 10, NURSE, "Treatment Room"),
        _Visit(70, "15:45", 15, GP2, "Consult Room 3"),
        _Visit(150, "15:30", 30, PAEDIATRICIAN, "Consult Room 4"),
    ),
    records=(
        _Record(
            2000,
            "immunisation",
            "Diphtheria, tetanus, pertussis and polio (4-year dose)",
            "Completed",
        ),
        _Record(1100, "condition", "Atopic eczema", "Active"),
        _Record(700, "allergy", "Peanut", "High criticality, anaphylaxis"),
        _Record(180, "immunisation", "Influenza vaccine", "Completed, lot FL2214"),
        _Record(75, "result", "Haemoglobin", "128 g/L"),
        _Record(75, "result", "Ferritin", "35 µg/L"),
        _Record(12, "result", "Height", "138 cm"),
        _Record(12, "result", "Weight", "31.5 kg"),
    ),
    unpaid=1,
)

_NOAH = _History(
    visits=(
        _Visit(-330, "10:00", 15, PRACTITIONER, "Consult Room 1", "confirmed", 9500),
        _Visit(-326, "11:30", 15, GP2, "Consult Room 3", "confirmed", 9500),
        _Visit(-190, "09:40", 10, NURSE, "Treatment Room", "confirmed", 3500),
        _Visit(-140, "10:15", 30, PAEDIATRICIAN, "Consult Room 4", "confirmed", 21000),
        _Visit(-50, "09:30", 15, PRACTITIONER, "Consult Room 2", "confirmed", 9500),
        _Visit(-20, "10:45", 15, PRACTITIONER, "Consult Room 1", "confirmed", 9500),
        _Visit(5, "09:30", 15, PRACTITIONER, "Consult Room 1"),
        _Visit(12, "10:00", 10, NURSE, "Treatment Room", "confirmed"),
        _Visit(30, "09:45", 30, PAEDIATRICIAN, "Consult Room 4"),
        _Visit(60, "10:30", 15, GP2, "Consult Room 3"),
        _Visit(100, "09:15", 15, PRACTITIONER, "Consult Room 1"),
        _Visit(200, "10:00", 30, PAEDIATRICIAN, "Consult Room 4"),
    ),
    records=(
        _Record(
            1900,
            "immunisation",
            "Measles, mumps, rubella and varicella (18-month dose)",
            "Completed",
        ),
        _Record(
            800,
            "immunisation",
            "Diphtheria, tetanus, pertussis and polio (4-year dose)",
            "Completed",
        ),
        _Record(330, "condition", "Otitis media", "Resolved"),
        _Record(326, "allergy", "Amoxicillin", "Low criticality, rash"),
        _Record(190, "immunisation", "Influenza vaccine", "Completed, lot FL2214"),
        _Record(140, "result", "Haemoglobin", "121 g/L"),
        _Record(20, "result", "Weight", "18.6 kg"),
        _Record(20, "result", "Height", "109 cm"),
    ),
    unpaid=2,
)

_FIRST_INVOICE = 10421


async def _add_history(
    conn: Writes,
    patient_id: int,
    history: _History,
    today: dt.date,
    tz: dt.tzinfo,
    invoice_number: int,
) -> int:
    """Adds one patient's visits, invoices and records; returns the next invoice number."""
    billed = [v for v in history.visits if v.fee_cents is not None]
    for visit in history.visits:
        day = today + dt.timedelta(days=visit.days)
        start = dt.datetime.combine(day, dt.time.fromisoformat(visit.at), tzinfo=tz)
        await portal.add_appointment(
            conn,
            patient_id,
            int(start.timestamp()),
            int(start.timestamp()) + visit.minutes * 60,
            visit.practitioner,
            visit.location,
            AppointmentStatus(visit.status),
        )
    for n, visit in enumerate(billed):
        assert visit.fee_cents is not None
        await portal.add_invoice(
            conn,
            patient_id,
            f"HFP-{invoice_number + n}",
            today + dt.timedelta(days=visit.days),
            visit.fee_cents,
            "AUD",
            paid=n < len(billed) - history.unpaid,
        )
    for record in history.records:
        await portal.add_record(
            conn,
            patient_id,
            today - dt.timedelta(days=record.days_ago),
            record.kind,
            record.title,
            record.details,
        )
    return invoice_number + len(billed)
