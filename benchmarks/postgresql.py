"""Section 7: PostgreSQL. The same load as section 1 through the webhook, on SQLite in one
process and on PostgreSQL with 1, 2 and 4 workers; and section 2's practice copied into
PostgreSQL, its hot queries timed and EXPLAINed there.

A throwaway cluster (storage/pgserver.py: Unix socket, fsync off) is started for the
section and removed after it; without PostgreSQL installed the section is skipped, with
the reason.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import load, scale
from benchmarks.botproc import ECHO_SAME_TRANSPORT
from benchmarks.loopback import tree_cpu_seconds
from benchmarks.seed import fresh, seed_load
from storage import open_database
from storage.db import Params
from storage.pgserver import Cluster
from storage.postgres import PostgresDatabase, _arguments, translate

WORKERS = (1, 2, 4)
READY = "taking updates at"  # bot/webhook.py logs it once per worker
# The tables section 2's generator fills, parents first.
TABLES = (
    "patients",
    "logins",
    "appointments",
    "invoices",
    "clinical_records",
    "grants",
    "audit_events",
)
# A sequential scan of a table this small is the planner's right choice, not a defect.
SMALL_TABLE = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu(cluster: Cluster) -> float:
    """CPU seconds of the whole server: the postmaster, its backends and helpers."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return tree_cpu_seconds(pid)


async def _sql(cluster: Cluster, statement: str) -> None:
    conn = await asyncpg.connect(cluster.url())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass
class Load:
    runs: dict[str, load.BotRun] = field(default_factory=dict)  # "sqlite_1", "pg_1", ...
    echo: load.BotRun | None = None  # section 1's echo on our transport, polling


async def measure_load(cluster: Cluster, workdir: Path, o: load.LoadOptions) -> Load:
    """Each configuration on a fresh copy of one seeded database: saturation, then latency
    at `o.rate` (section 1's first two phases)."""
    seed = fresh(workdir / "pg-section-seed.db")
    people_sqlite, _ = await seed_load(seed, o.users, load.ROUNDS)
    await _sql(cluster, "CREATE DATABASE bench_seed")
    people_pg, _ = await seed_load(cluster.url("bench_seed"), o.users, load.ROUNDS)
    out = Load()
    for workers in (0, *WORKERS):  # 0: SQLite, one process
        port = _free_port()
        command = (
            *(sys.executable, "-m", "benchmarks.webhookproc"),
            *("--workers", str(max(workers, 1)), "--port", str(port)),
        )
        options = replace(o, bot_command=command, ready_marker=READY, ready_count=max(workers, 1))
        if workers == 0:
            key, people = "sqlite_1", people_sqlite
            db: Path | str = fresh(workdir / "pg-section-sqlite.db")
            shutil.copyfile(seed, db)
        else:
            key, people = f"pg_{workers}", people_pg
            name = f"bench_{workers}"
            await _sql(cluster, f"CREATE DATABASE {name} TEMPLATE bench_seed")
            db = cluster.url(name)
            options = replace(options, side_cpu=lambda: server_cpu(cluster))
        _log(f"postgresql: load on {key.replace('_', ', ')} worker(s)")
        out.runs[key] = await load.run_bot("portal", people, db, options, light_phase=False)
    _log("postgresql: the echo bot on our transport (saturation)")
    out.echo = await load.run_bot(ECHO_SAME_TRANSPORT, people_sqlite, None, o, saturation_only=True)
    return out


# --- Section 2's practice, on PostgreSQL --------------------------------------------------


@dataclass
class Copied:
    rows: dict[str, int]
    seconds: float


async def copy_practice(cluster: Cluster, practice: Path, name: str = "practice") -> Copied:
    """The SQLite practice's tables into a freshly migrated PostgreSQL database by COPY,
    ids kept (so section 2's samples name the same rows), identities moved past them,
    then ANALYZE. Foreign-key triggers are off while loading, as pg_restore's
    --disable-triggers: the rows came from a database that checked them."""
    started = time.perf_counter()
    await _sql(cluster, f"CREATE DATABASE {name}")
    url = cluster.url(name)
    db = open_database(url)
    try:
        await db.migrate()
    finally:
        await db.close()
    source = sqlite3.connect(practice)
    conn = await asyncpg.connect(url)
    rows: dict[str, int] = {}
    try:
        await conn.execute("SET session_replication_role = replica")
        for table in TABLES:
            theirs = [
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                    " AND is_generated = 'NEVER'",
                    table,
                )
            ]
            ours = [d[0] for d in source.execute(f"SELECT * FROM {table} LIMIT 0").description]
            columns = [c for c in ours if c in theirs]
            cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
            await conn.copy_records_to_table(table, records=_batches(cursor), columns=columns)
            rows[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
            if "id" in columns:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
        source.close()
    return Copied(rows, time.perf_counter() - started)


def _batches(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    while batch := cursor.fetchmany(10_000):
        yield from batch


class _Recorded:
    """A connection that tells `record` each statement and its parameters."""

    def __init__(self, conn: Any, record: Callable[[str, Params | None], object]) -> None:
        self._conn = conn
        self._record = record

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)

    async def execute(self, sql: str, parameters: Params | None = None) -> Any:
        self._record(sql, parameters)
        return await self._conn.execute(sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Params | None = None) -> Any:
        self._record(sql, parameters)
        return await self._conn.execute_fetchall(sql, parameters)


class TracedPostgres(PostgresDatabase):
    """The app's PostgreSQL database, each statement seen (as SQLite's trace callback does
    for section 2), so that every statement the timed calls ran can be EXPLAINed."""

    def __init__(self, url: str, record: Callable[[str, Params | None], object]) -> None:
        super().__init__(url)
        self._record = record

    @asynccontextmanager
    async def _traced(self, opened: Any) -> AsyncIterator[Any]:
        async with opened as conn:
            yield _Recorded(conn, self._record)

    def transaction(self, *, change: bool = True) -> Any:
        return self._traced(super().transaction(change=change))

    def statement(self, *, change: bool = True) -> Any:
        return self._traced(super().statement(change=change))

    def read(self) -> Any:
        return self._traced(super().read())


_SEQ = re.compile(r"Seq Scan on (\w+)")


async def explain(url: str, calls: dict[str, tuple[str, Any]]) -> dict[str, list[str]]:
    """EXPLAIN of each statement with the parameters it ran with: those with a sequential
    scan of a table of more than SMALL_TABLE rows, and their plans."""
    found: dict[str, list[str]] = {}
    conn = await asyncpg.connect(url)
    try:
        sizes = {
            r["relname"]: r["reltuples"]
            for r in await conn.fetch("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
        }
        for key, (sql, params) in calls.items():
            if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT|WITH)", sql, re.I):
                continue
            text, order = translate(sql)
            plan = [r[0] for r in await conn.fetch(f"EXPLAIN {text}", *_arguments(order, params))]
            scanned = [t for line in plan for t in _SEQ.findall(line)]
            if any(sizes.get(t, 0) > SMALL_TABLE for t in scanned):
                found[key] = [line.strip() for line in plan]
    finally:
        await conn.close()
    return found


@dataclass
class Measured:
    skipped: str | None = None
    load: Load | None = None
    copied: Copied | None = None
    scale: scale.ScaleResult | None = None
    server: str = ""
    load_average: tuple[float, ...] = ()


@asynccontextmanager
async def started() -> AsyncIterator[Cluster]:
    cluster = Cluster()
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


def _log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)
