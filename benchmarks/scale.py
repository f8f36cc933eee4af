"""Section 2: the database of a large practice, and what the bot's hot queries cost there.

The generator is a benchmark tool, not the app: plain sqlite3, one transaction, no
journal and synchronous=OFF while loading, on the schema the app's own migrations made.
Activity is skewed as in a real practice (a few patients have many appointments, most
have a handful), so "random user" samples are weighted by activity, which is the harder
case for the page queries.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import access
from bot.access import Act, Area
from storage import Database, audit, grants, portal
from storage.db import Reads, SqliteDatabase, now

DAY = 86400
YEAR = 365 * DAY
PAGE = 6  # the views ask for one row more than the 5 they show
# A page of one patient's rows: (conn, patient_id, now, offset, limit).
PageFn = Callable[[Reads, int, int, int, int], Awaitable[object]]
# A page of rows with no `now`: (conn, patient_id, offset, limit).
ItemsFn = Callable[[Reads, int, int, int], Awaitable[object]]
LOG_PAGE = 11


@dataclass(frozen=True)
class Counts:
    patients: int = 100_000
    appointments: int = 1_000_000
    invoices: int = 300_000
    records: int = 500_000
    grants: int = 200_000
    audit_events: int = 2_000_000

    def scaled(self, factor: float) -> Counts:
        return Counts(**{k: max(20, round(v * factor)) for k, v in self.__dict__.items()})


@dataclass
class Generated:
    counts: Counts
    seconds: float
    size_bytes: int
    rows: dict[str, int] = field(default_factory=dict)


def _weights(rng: random.Random, n: int) -> list[float]:
    """Cumulative activity weights: Pareto, so a tenth of the patients do most of it."""
    total = 0.0
    cumulative = []
    for _ in range(n):
        total += min(rng.paretovariate(1.16), 1000.0)
        cumulative.append(total)
    return cumulative


def _pick(rng: random.Random, cumulative: list[float], k: int) -> list[int]:
    """k patient ids (1-based) drawn by activity, sorted so each patient's rows are
    inserted together (as an import would), which keeps the bulk load fast."""
    total = cumulative[-1]
    return sorted(bisect.bisect(cumulative, rng.random() * total) + 1 for _ in range(k))


def generate(path: Path, counts: Counts, seed: int = 7) -> Generated:
    """Fill a freshly migrated database at `path`."""
    started = time.perf_counter()
    asyncio.run(_migrate(path))
    rng = random.Random(seed)
    t_now = now()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB for the loader only
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    n = counts.patients
    adults = max(2, int(n * 0.8))
    holder = {pid: rng.randint(1, adults) for pid in range(adults + 1, n + 1)}
    conn.executemany(
        "INSERT INTO patients (id, full_name, date_of_birth, email, created_at, holder_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                pid,
                f"Patient {pid:06d}",
                f"{1940 + pid % 80}-{1 + pid % 12:02d}-{1 + pid % 28:02d}",
                f"patient{pid}@example.test" if pid <= adults else None,
                t_now - 3 * YEAR,
                holder.get(pid),
            )
            for pid in range(1, n + 1)
        ),
    )
    # Most adults signed in; a few dependents have grown up and have their own login.
    with_login = [pid for pid in range(1, n + 1) if rng.random() < (0.6 if pid <= adults else 0.05)]
    conn.executemany(
        "INSERT INTO logins (telegram_user_id, patient_id, locale, created_at)"
        " VALUES (?, ?, NULL, ?)",
        ((100_000_000 + pid, pid, t_now - YEAR) for pid in with_login),
    )
    weights = _weights(rng, n)
    doctors = ["Dr Maya Okafor", "Dr Tom Hartley", "Priya Nair", "Dr Ines Moreau", "Ben Walsh"]
    rooms = ["Consult Room 1", "Consult Room 2", "Treatment Room", "Telehealth"]

    def appointments() -> Iterator[tuple[Any, ...]]:
        for pid in _pick(rng, weights, counts.appointments):
            starts = t_now + rng.randint(-3 * YEAR, YEAR)
            past = starts < t_now
            status = rng.choice(
                ("confirmed", "confirmed", "cancelled") if past else ("booked", "confirmed")
            )
            yield (
                pid,
                starts,
                starts + 900,
                rng.choice(doctors),
                rng.choice(rooms),
                status,
                t_now,
            )

    conn.executemany(
        "INSERT INTO appointments (patient_id, starts_at, ends_at, practitioner, location,"
        " status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        appointments(),
    )

    def invoices() -> Iterator[tuple[Any, ...]]:
        for i, pid in enumerate(_pick(rng, weights, counts.invoices)):
            issued = t_now - rng.randint(0, 3 * YEAR)
            yield (pid, f"INV-{i:07d}", issued, rng.randint(3000, 30000), int(i % 5 > 0))

    conn.executemany(
        "INSERT INTO invoices (patient_id, number, issued_on, amount_minor, currency, paid)"
        " VALUES (?, ?, date(?, 'unixepoch'), ?, 'AUD', ?)",
        invoices(),
    )
    kinds = ("condition", "immunisation", "result", "allergy", "note")
    conn.executemany(
        "INSERT INTO clinical_records (patient_id, recorded_on, kind, title, details)"
        " VALUES (?, date(?, 'unixepoch'), ?, ?, ?)",
        (
            (pid, t_now - rng.randint(0, 5 * YEAR), kinds[i % 5], f"Record {i}", "Completed")
            for i, pid in enumerate(_pick(rng, weights, counts.records))
        ),
    )
    _grants(conn, rng, counts, holder, adults, t_now)
    _audit(conn, rng, counts, weights, t_now)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")  # what the app uses
    conn.execute("ANALYZE")
    rows = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in (
            "patients",
            "logins",
            "appointments",
            "invoices",
            "clinical_records",
            "grants",
            "audit_events",
        )
    }
    conn.close()
    return Generated(counts, time.perf_counter() - started, path.stat().st_size, rows)


def _grants(
    conn: sqlite3.Connection,
    rng: random.Random,
    counts: Counts,
    holder: dict[int, int],
    adults: int,
    t_now: int,
) -> None:
    """Every dependent's holder has access; the rest are requests between adults, in every
    state (at most one open grant per pair, as the schema insists)."""
    rows: list[tuple[Any, ...]] = []
    for dependent, holder_id in holder.items():
        if len(rows) >= counts.grants // 2:
            break
        at = t_now - YEAR
        name = f"Patient {dependent:06d}"
        grant = (holder_id, dependent, None, name, "child", "clinical", "edit", "active", None)
        rows.append((*grant, at, at))
    pairs = {(r[0], r[1]) for r in rows}
    statuses = ["active"] * 55 + ["pending"] * 10 + ["denied"] * 10 + ["revoked"] * 20
    statuses += ["expired"] * 5
    while len(rows) < counts.grants:
        # Families and carers: a couple of people each, not a long tail of thousands.
        accessor, subject = rng.randint(1, adults), rng.randint(1, adults)
        if accessor == subject or (accessor, subject) in pairs:
            continue
        pairs.add((accessor, subject))
        status = rng.choice(statuses)
        expires = t_now + rng.randint(DAY, 14 * DAY) if status == "pending" else None
        level = rng.choice(("clinical", "administrative"))
        requested = t_now - rng.randint(DAY, YEAR) if status != "pending" else t_now - DAY
        decided = None if status == "pending" else requested + DAY
        # Asked by email, with the name the requester typed, as /addpatient does.
        asked = (f"patient{subject}@example.test", f"Patient {subject:06d}")
        request = (accessor, subject, *asked, "partner", level, "view", status, expires)
        rows.append((*request, requested, decided))
    conn.executemany(
        "INSERT INTO grants (accessor_id, subject_id, subject_email, subject_name, relationship,"
        " level, role, status, expires_at, requested_at, decided_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _audit(
    conn: sqlite3.Connection, rng: random.Random, counts: Counts, weights: list[float], t_now: int
) -> None:
    """An append-only log: oldest first, subjects weighted by activity."""
    actions = ("view.appointments", "view.invoices", "view.records", "switch", "grant.approved")
    total = weights[-1]
    start = t_now - 2 * YEAR
    step = (2 * YEAR) / counts.audit_events

    def events() -> Iterator[tuple[Any, ...]]:
        for i in range(counts.audit_events):
            subject = bisect.bisect(weights, rng.random() * total) + 1
            actor = subject if rng.random() < 0.5 else rng.randint(1, counts.patients)
            yield (int(start + i * step), actor, subject, actions[i % 5], "ok", i % 1000 or None)

    conn.executemany(
        "INSERT INTO audit_events (at, actor_patient_id, subject_patient_id, action, outcome,"
        " ref_id) VALUES (?, ?, ?, ?, ?, ?)",
        events(),
    )


async def _migrate(path: Path) -> None:
    db = Database(path)
    try:
        await db.migrate()
    finally:
        await db.close()


# --- Timing ----------------------------------------------------------------------------------


@dataclass
class OpTiming:
    key: str
    label: str
    samples: list[float]  # seconds
    how: str


@dataclass
class ScaleResult:
    timings: list[OpTiming]
    plans: dict[str, list[str]]  # statement shape -> EXPLAIN QUERY PLAN lines, scanning ones
    statements: int  # distinct statement shapes seen


_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+\b")


def shape(sql: str) -> str:
    """A statement with its values replaced by ?, so repeats of one query collapse."""
    return " ".join(_LITERAL.sub("?", sql).split())


def scans(plan: list[str]) -> bool:
    # "SCAN t" reads a whole table or index; "SEARCH" uses an index; a constant row or a
    # list of values is not a table.
    return any(re.match(r"SCAN (?!CONSTANT ROW)", line) for line in plan)


def _explain(path: Path, statements: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    conn = sqlite3.connect(path)
    try:
        for key, sql in statements.items():
            if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT|WITH)", sql, re.I):
                continue
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            plan = [row[3] for row in rows]
            if scans(plan):
                found[key] = plan
    finally:
        conn.close()
    return found


async def measure(
    path: Path, samples: int, seed: int = 11, *, postgres: str | None = None
) -> ScaleResult:
    """Time the hot queries on the practice at `path`; or, with `postgres` (a URL), on that
    PostgreSQL copy of it (benchmarks/postgresql.py), the samples still drawn from `path`."""
    rng = random.Random(seed)
    sample = _samples(path, samples, rng)
    statements: dict[str, str] = {}
    calls: dict[str, tuple[str, Any]] = {}  # PostgreSQL's: statement and parameters
    db: Database
    if postgres is None:
        sqlite = SqliteDatabase(path)  # its statements are traced below
        await sqlite.connect()

        def trace(sql: str) -> None:
            statements.setdefault(shape(sql), sql)

        await sqlite.set_trace_callback(trace)  # reads and writes: two connections
        db = sqlite
    else:
        from benchmarks.postgresql import TracedPostgres

        db = TracedPostgres(postgres, lambda sql, p: calls.setdefault(shape(sql), (sql, p)))
        await db.connect()
    timings: list[OpTiming] = []
    t_now = now()

    async def timed(
        key: str, label: str, how: str, items: list[Any], op: Callable[[Any], Awaitable[object]]
    ) -> None:
        took = []
        for item in items:
            t0 = time.perf_counter()
            await op(item)
            took.append(time.perf_counter() - t0)
        timings.append(OpTiming(key, label, took, how))

    async def read(fn: Callable[[Any], Awaitable[object]]) -> None:
        async with db.read() as conn:
            await fn(conn)

    def first_page(fn: PageFn) -> Callable[[int], Awaitable[None]]:
        return lambda patient: read(lambda c: fn(c, patient, t_now, 0, PAGE))

    def first_items(fn: ItemsFn) -> Callable[[int], Awaitable[None]]:
        return lambda patient: read(lambda c: fn(c, patient, 0, PAGE))

    try:
        areas = list(Area)
        await timed(
            "permission",
            "Access check",
            "bot.access.permission in a read transaction; random active grants (accessor, "
            "subject) and areas",
            sample["pairs"],
            lambda p: read(
                lambda c: access.permission(c, p[0], p[1], areas[p[0] % len(areas)], Act.VIEW)
            ),
        )
        await timed(
            "switch_list",
            "/switch list",
            "storage.grants.accessible_by; accessors of random active grants",
            sample["accessors"],
            lambda a: read(lambda c: grants.accessible_by(c, a)),
        )
        for key, label, fn in (
            ("upcoming", "Upcoming appointments page", portal.upcoming_appointments),
            ("past", "Past appointments page", portal.past_appointments),
        ):
            await timed(
                key,
                label,
                f"storage.portal.{fn.__name__}, first page (6 rows); patients drawn by activity",
                sample["active_patients"],
                first_page(fn),
            )
        items: tuple[tuple[str, str, ItemsFn], ...] = (
            ("invoices", "Invoices page", portal.invoices_page),
            ("records", "Clinical records page", portal.records_page),
        )
        for key, label, items_fn in items:
            await timed(
                key,
                label,
                f"storage.portal.{items_fn.__name__}, first page; patients drawn by activity",
                sample["active_patients"],
                first_items(items_fn),
            )
        await timed(
            "decide",
            "Deciding a request",
            "bot.access.decide (approve) on fresh pending requests whose subject has a login; "
            "its own write transaction, committed (WAL, synchronous=NORMAL as in the app)",
            sample["pending"],
            lambda g: access.decide(db, g[0], g[1], True),
        )
        await timed(
            "access_log",
            "Access log page",
            "storage.audit.page_for_subject, first page (11 rows); subjects drawn by activity",
            sample["audit_subjects"],
            lambda s: read(lambda c: audit.page_for_subject(c, s, LOG_PAGE, 0)),
        )
        await timed(
            "waiting_for",
            "Requests waiting (every /start)",
            "bot.access.waiting_for, as /start calls it: expire stale requests, the patient's "
            "held dependents, their pending requests; random signed-in patients",
            sample["signed_in"],
            lambda p: access.waiting_for(db, p, only_undelivered=True),
        )
        await timed(
            "overview",
            "/access overview",
            "bot.access.overview: everything /access shows; random signed-in patients",
            sample["signed_in"],
            lambda p: access.overview(db, p),
        )
    finally:
        await db.close()
    if postgres is not None:
        from benchmarks.postgresql import explain

        return ScaleResult(timings, await explain(postgres, calls), len(calls))
    return ScaleResult(timings, _explain(path, statements), len(statements))


def _samples(path: Path, n: int, rng: random.Random) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        t_now = now()
        max_appointment = conn.execute("SELECT max(id) FROM appointments").fetchone()[0]
        ids = [rng.randint(1, max_appointment) for _ in range(n)]
        active_patients = [
            conn.execute("SELECT patient_id FROM appointments WHERE id = ?", (i,)).fetchone()[0]
            for i in ids
        ]
        pairs = conn.execute(
            "SELECT accessor_id, subject_id FROM grants WHERE status = 'active'"
            " ORDER BY random() LIMIT ?",
            (n,),
        ).fetchall()
        pending = conn.execute(
            "SELECT g.id, g.subject_id FROM grants g JOIN logins l ON l.patient_id = g.subject_id"
            " WHERE g.status = 'pending' AND g.kind = 'request' AND g.expires_at > ?"
            " ORDER BY random() LIMIT ?",
            (t_now + 3600, n),
        ).fetchall()
        max_event = conn.execute("SELECT max(id) FROM audit_events").fetchone()[0]
        audit_subjects = [
            conn.execute(
                "SELECT subject_patient_id FROM audit_events WHERE id = ?",
                (rng.randint(1, max_event),),
            ).fetchone()[0]
            for _ in range(n)
        ]
        signed_in = [
            row[0]
            for row in conn.execute(
                "SELECT patient_id FROM logins ORDER BY random() LIMIT ?", (n,)
            ).fetchall()
        ]
    finally:
        conn.close()
    return {
        "active_patients": active_patients,
        "pairs": [tuple(p) for p in pairs],
        "accessors": [p[0] for p in pairs],
        "pending": [tuple(p) for p in pending],
        "audit_subjects": audit_subjects,
        "signed_in": signed_in,
    }
