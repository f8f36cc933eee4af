"""Section 6: a practice day of reminders, queued on section 2's practice and sent by the bot.

Queueing: one day (the next 24 hours) is given 10,000 appointments, section 2's own in that
window included, and each of their patients enough people with access (active grants to
signed-in adults) that 1 to 4 people are reminded of each, 2.5 on average. Then
`bot.reminders.queue_due_reminders` runs as the sweep calls it, twice at the same moment:
the second finds nothing new. Its database time is the time inside SQLite of every
statement it ran, taken around sqlite3's calls on the app's writer.

Sending: the real bot in its own process (benchmarks/botproc.py) against the loopback
emulator sends a sample of that backlog from its outbox, as it does at start-up or after a
sweep: first without PTB's rate limiter (its CPU and its ceiling), then with it, as `bot
run` has it (the pace Telegram's limits allow), and with every Bot API call held for a
round trip to Telegram. The whole day's drain is projected from those.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.load import child_env
from benchmarks.loopback import BenchServer, cpu_seconds, stop_bot
from benchmarks.scale import scans, shape
from bot.reminders import ReminderReport, queue_due_reminders
from bot.settings import load_settings
from playground.emulator import Msg
from storage.db import OnLoop, Params, Record, SqliteDatabase, _Cursor, now
from storage.outbox import Kind

if TYPE_CHECKING:  # the emulator's hook overridden below takes its chats
    from playground.emulator.chats import Chat

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400
DAY_APPOINTMENTS = 10_000
RECIPIENTS = (1, 2, 3, 4)  # people reminded per patient of the day, drawn evenly: 2.5 on average
TELEGRAM_RATE = 30.0  # messages/s, the bot as a whole (Telegram's bot FAQ)
PER_CHAT_S = 1.0  # at most one message per second to one chat
RTT_S = 0.05  # a round trip to Telegram's servers from a host close to them
SET_ASIDE_S = 10 * 365 * DAY  # rows not in the phase under way wait this far ahead
# Reminders the bot sends: without a rate limiter, with it, with it and a round trip.
SAMPLES = (2000, 300, 100)
QUICK_SAMPLES = (20, 90, 10)  # enough for PTB's limiter to fill its bucket and pace


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """The benchmark's own connection: committed (or rolled back) and closed."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


# --- The day's data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    at: int  # the sweep's moment: the day is (at, at + 24 h]
    appointments: int
    already_there: int  # section 2's own appointments in that window
    patients: int
    grants_added: int
    expected: int  # reminders the day's data calls for, counted in SQL
    seconds: float


def add_day(path: Path, appointments: int, at: int, seed: int = 5) -> Day:
    """Make (at, at + 24 h] hold `appointments` booked or confirmed appointments, and give
    each of their patients 1-4 people to remind (plain sqlite3, one transaction)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        window = "a.starts_at > ? AND a.starts_at <= ? AND a.status IN ('booked', 'confirmed')"
        existing = [
            row[0]
            for row in conn.execute(
                f"SELECT a.patient_id FROM appointments a WHERE {window}", (at, at + DAY)
            )
        ]
        taken = set(existing)
        living = [
            row[0]
            for row in conn.execute("SELECT id FROM patients WHERE deceased = 0 ORDER BY id")
            if row[0] not in taken
        ]
        new = rng.sample(living, min(len(living), max(0, appointments - len(existing))))
        doctors = ["Dr Maya Okafor", "Dr Tom Hartley", "Priya Nair", "Dr Ines Moreau"]
        rooms = ["Consult Room 1", "Consult Room 2", "Treatment Room", "Telehealth"]
        rows = []
        for pid in new:
            starts = at + rng.randint(1, DAY // 300) * 300  # 5-minute steps after `at`
            status = rng.choice(("booked", "confirmed"))
            rows.append((pid, starts, starts + 900, rng.choice(doctors), rng.choice(rooms), status))
        conn.executemany(
            "INSERT INTO appointments (patient_id, starts_at, ends_at, practitioner, location,"
            f" status, updated_at) VALUES (?, ?, ?, ?, ?, ?, {at})",
            rows,
        )
        patients = sorted(taken | set(new))
        added = _people_to_remind(conn, rng, patients, at)
        expected = conn.execute(
            "SELECT count(*) FROM appointments a"
            " JOIN patients s ON s.id = a.patient_id AND s.deceased = 0"
            " JOIN logins l ON l.patient_id = s.id"
            f" WHERE {window}",
            (at, at + DAY),
        ).fetchone()[0]
        expected += conn.execute(
            "SELECT count(*) FROM appointments a"
            " JOIN patients s ON s.id = a.patient_id AND s.deceased = 0"
            " CROSS JOIN grants g ON g.subject_id = s.id AND g.status = 'active'"
            " JOIN patients r ON r.id = g.accessor_id AND r.deceased = 0"
            " JOIN logins l ON l.patient_id = g.accessor_id"
            f" WHERE {window}",
            (at, at + DAY),
        ).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    total = len(existing) + len(new)
    return Day(
        at, total, len(existing), len(patients), added, expected, time.perf_counter() - started
    )


def _people_to_remind(
    conn: sqlite3.Connection, rng: random.Random, patients: list[int], at: int
) -> int:
    """Active grants from signed-in adults until each patient has their 1-4 people to remind
    (themself when signed in, and each signed-in holder); returns how many were added."""
    adults = [
        row[0]
        for row in conn.execute(
            "SELECT l.patient_id FROM logins l JOIN patients p ON p.id = l.patient_id"
            " WHERE p.deceased = 0 AND p.holder_id IS NULL ORDER BY 1"
        )
    ]
    reminded = (
        "SELECT (SELECT count(*) FROM logins WHERE patient_id = :p)"
        " + (SELECT count(*) FROM grants g JOIN logins l ON l.patient_id = g.accessor_id"
        " JOIN patients r ON r.id = g.accessor_id AND r.deceased = 0"
        " WHERE g.subject_id = :p AND g.status = 'active')"
    )
    rows: list[tuple[Any, ...]] = []
    for pid in patients:
        missing = rng.choice(RECIPIENTS) - conn.execute(reminded, {"p": pid}).fetchone()[0]
        if missing <= 0 or not adults:
            continue
        open_pairs = {
            row[0]
            for row in conn.execute(
                "SELECT accessor_id FROM grants WHERE subject_id = ?"
                " AND status IN ('pending', 'active')",
                (pid,),
            )
        }
        for _ in range(missing):
            accessor = rng.choice(adults)
            if accessor == pid or accessor in open_pairs:
                continue  # one fewer for this patient: rare at scale
            open_pairs.add(accessor)
            relationship = rng.choice(("parent", "partner", "carer", "child"))
            level = rng.choice(("clinical", "administrative"))
            role = rng.choice(("edit", "view"))
            rows.append(
                (accessor, pid, f"Patient {pid:06d}", relationship, level, role, at - 30 * DAY)
            )
    conn.executemany(
        "INSERT INTO grants (accessor_id, subject_id, subject_name, relationship, level, role,"
        " status, requested_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?)",
        [(*r, r[-1]) for r in rows],
    )
    return len(rows)


# --- Queueing ----------------------------------------------------------------------------------


class _TimedWriter(OnLoop):
    """The app's writer on the loop (storage/db.py), timing each statement in SQLite."""

    def __init__(self, conn: sqlite3.Connection, spent: list[tuple[str, Params, float]]) -> None:
        super().__init__(conn)
        self.spent = spent

    def begin_immediate(self) -> None:
        t0 = time.perf_counter()
        super().begin_immediate()
        self.spent.append(("BEGIN IMMEDIATE", (), time.perf_counter() - t0))

    async def execute(self, sql: str, parameters: Params | None = None) -> _Cursor:
        t0 = time.perf_counter()
        cursor = await super().execute(sql, parameters)
        self.spent.append((sql, parameters or (), time.perf_counter() - t0))
        return cursor

    async def execute_fetchall(self, sql: str, parameters: Params | None = None) -> list[Record]:
        t0 = time.perf_counter()
        rows = await super().execute_fetchall(sql, parameters)
        self.spent.append((sql, parameters or (), time.perf_counter() - t0))
        return rows


@dataclass
class Queued:
    report: ReminderReport
    wall: float
    spent: list[tuple[str, Params, float]]
    rows: int  # reminder rows in the outbox afterwards

    @property
    def db(self) -> float:
        return sum(s for _, _, s in self.spent)

    def part(self, prefix: str) -> tuple[int, float]:
        """(statements, seconds) of the statements starting with `prefix`."""
        mine = [s for sql, _, s in self.spent if sql.lstrip().upper().startswith(prefix)]
        return len(mine), sum(mine)


async def queue_twice(path: Path, at: int) -> tuple[Queued, Queued, dict[str, list[str]], int]:
    """The sweep's reminders at `at`, then the same again; and the plans of the statements
    that scan, and how many reminders went into the outbox more than once."""
    settings = load_settings(db_path=path, reminders="24h,2h")
    db = SqliteDatabase(path)  # its loop writer is timed below
    await db.connect()
    runs: list[Queued] = []
    try:
        writer = db._writer  # every statement of a transaction runs on it (storage/db.py)
        if writer is None:
            raise RuntimeError(f"{path} is not in WAL mode: the app's writer is not on the loop")
        for _ in range(2):
            spent: list[tuple[str, Params, float]] = []
            db._writer = _TimedWriter(writer._conn, spent)
            t0 = time.perf_counter()
            report = await queue_due_reminders(db, settings, at)
            wall = time.perf_counter() - t0
            runs.append(Queued(report, wall, spent, _reminder_rows(path)))
        db._writer = writer
    finally:
        await db.close()
    first, second = runs
    statements: dict[str, tuple[str, Params]] = {}
    for sql, params, _ in first.spent + second.spent:
        statements.setdefault(shape(sql), (sql, params))
    return first, second, _explain(path, statements), _twice(path)


def _reminder_rows(path: Path) -> int:
    with _connect(path) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE kind = ?", (Kind.REMINDER,))
        return int(row.fetchone()[0])


def _twice(path: Path) -> int:
    """Reminders in the outbox for the same appointment, start, offset and person as another."""
    with _connect(path) as conn:
        row = conn.execute(
            "SELECT count(*) - count(DISTINCT ref_id || ':' || patient_id || ':'"
            " || json_extract(detail, '$.starts_at') || ':' || json_extract(detail, '$.offset'))"
            " FROM outbox WHERE kind = ?",
            (Kind.REMINDER,),
        ).fetchone()
    return int(row[0])


def _explain(path: Path, statements: dict[str, tuple[str, Params]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    conn = sqlite3.connect(path)
    try:
        for key, (sql, params) in statements.items():
            if not sql.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "WITH")):
                continue
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            if scans(plan):
                found[key] = plan
    finally:
        conn.close()
    return found


# --- Sending -----------------------------------------------------------------------------------


class _Inbox(BenchServer):
    """The emulator, noting when each message the bot sends reaches its chat."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrived: list[tuple[float, int]] = []  # (perf_counter, chat id)

    def _record(self, chat: Chat, msg: Msg | None) -> None:
        super()._record(chat, msg)
        if msg is not None and msg.from_bot and not msg.deleted:
            self.arrived.append((time.perf_counter(), chat.id))


@dataclass
class Phase:
    """Outbox rows released at once, and what the bot made of them."""

    name: str
    rate_limited: bool
    rtt: float
    released: int
    arrived: list[tuple[float, int]] = field(default_factory=list)
    cpu: float = 0.0  # the bot process's CPU seconds, from the release to the last row settled
    outcome: dict[str, int] = field(default_factory=dict)  # released rows by status

    @property
    def messages(self) -> int:
        return len(self.arrived)

    @property
    def rate(self) -> float:
        """Messages/s from the first to the last."""
        if self.messages < 2:
            return float("nan")
        span = self.arrived[-1][0] - self.arrived[0][0]
        return (self.messages - 1) / span if span > 0 else float("nan")

    @property
    def steady_rate(self) -> float:
        """Messages/s over the second half: a rate limiter's bucket lets the first ones go
        at once, until it is full."""
        half = self.messages // 2
        if self.messages - half < 2:
            return self.rate
        span = self.arrived[-1][0] - self.arrived[half][0]
        return (self.messages - 1 - half) / span if span > 0 else float("nan")

    def most_in_a_second(self) -> int:
        times = [t for t, _ in self.arrived]
        most, low = 0, 0
        for high, t in enumerate(times):
            while t - times[low] >= 1.0:
                low += 1
            most = max(most, high - low + 1)
        return most

    def same_chat_within(self, seconds: float) -> int:
        """Messages that followed another to the same chat sooner than `seconds`."""
        last: dict[int, float] = {}
        close = 0
        for t, chat in self.arrived:
            if chat in last and t - last[chat] < seconds:
                close += 1
            last[chat] = t
        return close

    @property
    def cpu_per_message(self) -> float:
        return self.cpu / self.messages if self.messages else float("nan")


@dataclass
class Backlog:
    """The queued reminders in the order the sender takes them (row id)."""

    rows: list[tuple[int, int]]  # (outbox id, chat id)
    chats: int
    most_to_one_chat: int
    # At 30 messages/s, reminders that would follow one to the same chat within a second.
    same_chat_within_1s: int


def backlog(path: Path) -> Backlog:
    with _connect(path) as conn:
        rows = [
            (row[0], row[1])
            for row in conn.execute(
                "SELECT o.id, l.telegram_user_id FROM outbox o"
                " JOIN logins l ON l.patient_id = o.patient_id"
                " WHERE o.kind = ? AND o.status = 'queued' ORDER BY o.id",
                (Kind.REMINDER,),
            )
        ]
    per_chat: dict[int, int] = defaultdict(int)
    last: dict[int, int] = {}
    close = 0
    window = int(TELEGRAM_RATE * PER_CHAT_S)
    for position, (_, chat) in enumerate(rows):
        per_chat[chat] += 1
        if chat in last and position - last[chat] < window:
            close += 1
        last[chat] = position
    return Backlog(rows, len(per_chat), max(per_chat.values(), default=0), close)


@dataclass
class Drained:
    backlog: Backlog
    unpaced: Phase  # no rate limiter: the bot's own cost and ceiling
    paced: Phase  # PTB's AIORateLimiter, as `bot run` has it
    paced_rtt: Phase  # the same, every Bot API call held RTT_S
    timezone: str
    stderr: str


def midday_zone(at: int) -> str:
    """A fixed-offset zone where `at` is about midday: no quiet hours while the sample goes
    (at night they would hold every reminder until the morning)."""
    east = 12 - dt.datetime.fromtimestamp(at, dt.UTC).hour  # hours east of UTC: -11 .. 12
    return f"Etc/GMT{-east:+d}"  # the Etc zones' sign is the other way round


async def drain(path: Path, sizes: Sequence[int]) -> Drained:
    """Send the first sizes[0] queued reminders without a rate limiter, the next sizes[1]
    with it, and the next sizes[2] with it and a round trip to Telegram."""
    _set_aside(path)
    queued = backlog(path)
    slices: list[list[tuple[int, int]]] = []
    start = 0
    for size in sizes:
        slices.append(queued.rows[start : start + size])
        start += size
    zone = midday_zone(now())
    errors: list[str] = []
    unpaced = Phase("unpaced", False, 0.0, len(slices[0]))
    paced = Phase("paced", True, 0.0, len(slices[1]))
    paced_rtt = Phase("paced_rtt", True, RTT_S, len(slices[2]))
    await _run_bot(path, zone, [(unpaced, slices[0])], errors)
    await _run_bot(path, zone, [(paced, slices[1]), (paced_rtt, slices[2])], errors)
    return Drained(queued, unpaced, paced, paced_rtt, zone, "\n".join(errors))


def _set_aside(path: Path) -> None:
    """Nothing is due when the bot starts: other rows (section 2's decisions) count as sent,
    and the reminders wait until their phase releases them."""
    at = now()
    with _connect(path) as conn:
        conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'queued' AND kind <> ?",
            (at, Kind.REMINDER),
        )
        conn.execute(
            "UPDATE outbox SET due_at = ? WHERE status = 'queued' AND kind = ?",
            (at + SET_ASIDE_S, Kind.REMINDER),
        )


def _release(path: Path, ids: list[int]) -> None:
    with _connect(path) as conn:
        conn.execute(
            "UPDATE outbox SET due_at = ? WHERE id IN (SELECT value FROM json_each(?))",
            (now(), json.dumps(ids)),
        )


def _outcome(path: Path, ids: list[int]) -> dict[str, int]:
    """The released rows by status ('dropped:why' for a dropped one); 'queued' while any
    is left to send."""
    with _connect(path) as conn:
        rows = conn.execute(
            "SELECT status || coalesce(':' || dropped_why, ''), count(*) FROM outbox"
            " WHERE id IN (SELECT value FROM json_each(?)) GROUP BY 1",
            (json.dumps(ids),),
        ).fetchall()
    return {row[0]: row[1] for row in rows}


async def _run_bot(
    path: Path, zone: str, phases: list[tuple[Phase, list[tuple[int, int]]]], errors: list[str]
) -> None:
    """One bot process; each phase's rows released in turn once it is polling and idle."""
    server = _Inbox(bot_username="portal_bench_bot")
    await server.start()
    for _, rows in phases:
        for _, chat in rows:
            server.user(chat, f"Patient{chat}", "en").started = True  # they signed in earlier
    command = [sys.executable, "-m", "benchmarks.botproc", "portal"]
    command += ["--token", server.token, "--base-url", server.base_url, "--db", str(path)]
    command += ["--timezone", zone]
    if phases[0][0].rate_limited:
        command.append("--rate-limit")
    with tempfile.TemporaryFile() as err:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.DEVNULL, stderr=err
        )
        try:
            try:
                await asyncio.wait_for(server.polled.wait(), 60)
            except TimeoutError:
                err.seek(0)
                raise RuntimeError(
                    "the bot never polled: " + err.read().decode(errors="replace")
                ) from None
            await asyncio.sleep(1.0)  # its start-up calls (the command menus) are not counted
            for phase, rows in phases:
                server.rtt = phase.rtt
                await _phase(server, proc.pid, path, phase, [i for i, _ in rows])
        finally:
            await stop_bot(proc)
            await server.stop()
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
        if text:
            errors.append(text[-2000:])


async def _phase(server: _Inbox, pid: int, path: Path, phase: Phase, ids: list[int]) -> None:
    """Release the rows, wait until none is left queued; the bot's CPU meanwhile."""
    if not ids:
        return
    first = len(server.arrived)
    cpu0 = cpu_seconds(pid)
    await asyncio.to_thread(_release, path, ids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60 + len(ids) * max(0.2, 3 * phase.rtt)
    revision, checked = server.revision, loop.time()
    while True:
        revision = await server.wait_change(revision, 0.25)
        waiting = len(server.arrived) - first < len(ids)
        if waiting and loop.time() - checked < 1.0 and loop.time() < deadline:
            continue
        # A row is marked sent after Telegram took it, or dropped without a message: the
        # database says when none is left.
        checked = loop.time()
        outcome = await asyncio.to_thread(_outcome, path, ids)
        if "queued" not in outcome or loop.time() > deadline:
            break
    phase.cpu = cpu_seconds(pid) - cpu0
    phase.arrived = server.arrived[first:]
    phase.outcome = outcome


# --- The section -------------------------------------------------------------------------------


@dataclass
class Measured:
    day: Day
    first: Queued
    second: Queued
    plans: dict[str, list[str]]  # statement shape -> EXPLAIN QUERY PLAN lines, scanning ones
    twice: int  # reminders in the outbox more than once
    drained: Drained


async def measure(path: Path, appointments: int, sizes: Sequence[int]) -> Measured:
    """On a practice generated by section 2 (and measured there first): the day, the
    sweep twice, and the sample sent by the bot."""
    at = now()
    day = await asyncio.to_thread(add_day, path, appointments, at)
    first, second, plans, twice = await queue_twice(path, at)
    drained = await drain(path, sizes)
    return Measured(day, first, second, plans, twice, drained)
