"""The people of the load run, made with the bot's own functions (the same the CLI, the
demo and the tests use): signed-in parents with two children each, a season of
appointments, invoices and records, and access requests waiting for each parent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from bot import access
from bot.access import AccessRequest
from storage import Database, logins, patients, portal
from storage.db import Writes, now
from storage.vocabulary import AppointmentStatus, Level, Relationship, Role

USER_BASE = 5_000_000  # Telegram ids of the parents who drive the load
REQUESTER_BASE = 6_000_000  # Telegram ids of the patients whose requests they approve
HOUR = 3600
DAY = 24 * HOUR
FIRST = ["Ava", "Noah", "Mia", "Leo", "Zoe", "Ethan", "Isla", "Omar", "Ruby", "Kai", "Lena", "Sam"]
LAST = ["Nguyen", "Smith", "Chen", "Patel", "Rossi", "Kaur", "Okafor", "Walsh", "Silva", "Lee"]
PLACES = ["Consult Room 1", "Consult Room 2", "Treatment Room", "Telehealth (video call)"]
DOCTORS = ["Dr Maya Okafor", "Dr Tom Hartley", "Priya Nair (practice nurse)", "Dr Ines Moreau"]


@dataclass
class LoadUser:
    telegram_id: int
    patient_id: int
    children: list[int]
    pending: list[int] = field(default_factory=list)  # grant ids waiting for this parent


def fresh(path: Path) -> Path:
    """Remove a database left by an earlier run (with its WAL files); returns the path."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"


async def seed_load(
    path: Path | str, users: int, requests_per_user: int
) -> tuple[list[LoadUser], int]:
    """Returns the parents and how many requester accounts were made. `path`: a SQLite
    file, or a postgresql:// URL."""
    db = Database(path)
    await db.migrate()
    made: list[LoadUser] = []
    try:
        async with db.transaction() as conn:
            for i in range(users):
                p = await patients.create(
                    conn, _name(i), dt.date(1980, 1, 1) + dt.timedelta(days=i), f"p{i}@example.test"
                )
                await logins.create(conn, USER_BASE + i, p.id, None)
                made.append(LoadUser(USER_BASE + i, p.id, []))
            requesters = []
            for j in range(requests_per_user):
                r = await patients.create(
                    conn, _name(j + 7) + f" {j}", dt.date(1975, 1, 1), f"r{j}@example.test"
                )
                await logins.create(conn, REQUESTER_BASE + j, r.id, None)
                requesters.append(r.id)
        for i, u in enumerate(made):
            for k, (rel, level, role) in enumerate(
                [
                    (Relationship.DAUGHTER, Level.CLINICAL, Role.EDIT),
                    (Relationship.SON, Level.ADMINISTRATIVE, Role.VIEW),
                ]
            ):
                name = f"{FIRST[(i + k + 3) % len(FIRST)]} {LAST[i % len(LAST)]}"
                child, _ = await access.create_dependent(
                    db,
                    u.patient_id,
                    name,
                    dt.date(2014 + k, 3, 1),
                    AccessRequest(name, rel, None, level, role),
                )
                u.children.append(child.id)
            async with db.transaction() as conn:
                for n, who in enumerate([u.patient_id, *u.children]):
                    await _history(conn, who, i + n)
            for j, requester in enumerate(requesters):
                result = await access.request_by_email(
                    db,
                    requester,
                    f"p{i}@example.test",
                    AccessRequest(_name(i), Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW),
                    ttl_days=14,
                )
                assert result.grant is not None, (i, j)
                u.pending.append(result.grant.id)
    finally:
        await db.close()
    return made, requests_per_user


async def _history(conn: Writes, patient_id: int, salt: int) -> None:
    """12 upcoming weekly appointments, 5 past ones, 3 invoices and 3 records."""
    start = now() + DAY
    for w in range(12):
        at = start + w * 7 * DAY + (salt % 8) * HOUR
        await portal.add_appointment(
            conn,
            patient_id,
            at,
            at + HOUR // 4,
            DOCTORS[(salt + w) % len(DOCTORS)],
            PLACES[(salt + w) % len(PLACES)],
            AppointmentStatus.CONFIRMED if w == 0 else AppointmentStatus.BOOKED,
        )
    for w in range(1, 6):
        at = now() - w * 30 * DAY
        await portal.add_appointment(
            conn,
            patient_id,
            at,
            at + HOUR // 4,
            DOCTORS[w % len(DOCTORS)],
            PLACES[w % len(PLACES)],
            AppointmentStatus.CONFIRMED,
        )
    today = dt.date.today()
    for w in range(3):
        await portal.add_invoice(
            conn,
            patient_id,
            f"INV-{patient_id}-{w}",
            today - dt.timedelta(days=30 * w + 1),
            9500 + 500 * w,
            "AUD",
            w > 0,
        )
    for w, (kind, title) in enumerate(
        [("immunisation", "Influenza vaccine"), ("result", "HbA1c"), ("note", "Review")]
    ):
        await portal.add_record(
            conn,
            patient_id,
            today - dt.timedelta(days=60 * w + 3),
            kind,
            title,
            "Completed",
        )
