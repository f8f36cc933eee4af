"""The database handle: explicit transactions, numbered migrations, and two connections.

Writes go through aiosqlite's thread: a write may wait for another process's lock (up to
BUSY_TIMEOUT_MS), and the event loop must not wait with it. Reads run on the loop, on a
read-only connection of their own: in WAL mode a reader never waits for a writer, and a
lookup takes SQLite tens of microseconds, while the trip to the database thread and back
cost ~0.5-1 ms of waiting (the worker thread waits for the loop to release the GIL) and
a loop wake-up per statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

BUSY_TIMEOUT_MS = 5000
# A WAL reader waits only in rare moments (another connection recovering the WAL after a
# crash); the loop waits with it, so not for long: past this the read fails and the user is
# told to try again.
READ_BUSY_TIMEOUT_MS = 250


class StorageError(Exception):
    """A storage failure worth telling the operator about in one line."""


def now() -> int:
    """Seconds since the epoch; every timestamp in the database uses this unit."""
    return int(time.time())


class Rows(Protocol):
    async def fetchone(self) -> sqlite3.Row | None: ...

    async def fetchall(self) -> Iterable[sqlite3.Row]: ...


class Reads(Protocol):
    """What a read needs of a connection: the loop's Reader, or the writer's aiosqlite
    connection inside a transaction (to see its own writes)."""

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Rows: ...

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[sqlite3.Row]: ...


class _ReadCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def fetchone(self) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._cursor.fetchone()
        return row

    async def fetchall(self) -> list[sqlite3.Row]:
        return self._cursor.fetchall()


class Reader:
    """The read-only connection reads run on, on the event loop's thread, with the call
    shape of aiosqlite's so that repository functions take either."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _ReadCursor:
        return _ReadCursor(self._conn.execute(sql, () if parameters is None else parameters))

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> list[sqlite3.Row]:
        return self._conn.execute(sql, () if parameters is None else parameters).fetchall()


async def fetch_one(conn: Reads, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    """One row; through aiosqlite, in one trip to its thread (execute, then fetchone, would
    be two)."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(conn: Reads, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Every row; through aiosqlite, in one trip to its thread."""
    return list(await conn.execute_fetchall(sql, params))


class Database:
    """Owns the connections; hands each out one user at a time.

    The writer is shared by every handler, so a lock keeps one coroutine's transaction
    from seeing (or committing) another's half-done writes; the reader has a lock of its
    own, for the snapshot read() opens.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        # The bot and its persistence both migrate on start; once per connection is enough.
        self._migrated = False

    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except Exception as exc:  # sqlite3.OperationalError for a bad path
            raise StorageError(f"cannot open database {self.path!r}: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        if self.path in ("", ":memory:"):  # private to one connection: reads share it
            self._conn = conn
            return
        # Opened after the writer, which made the file and switched it to WAL.
        try:
            reader = sqlite3.connect(self.path, isolation_level=None)
            reader.row_factory = sqlite3.Row
            reader.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
            reader.execute("PRAGMA query_only = ON")  # a write here would block the loop
        except sqlite3.Error as exc:
            await conn.close()
            raise StorageError(f"cannot open database {self.path!r} to read: {exc}") from exc
        self._conn, self._reader = conn, reader

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
            self._migrated = False

    async def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """See every statement both connections run (the benchmark's EXPLAINs, tests)."""
        await self.conn.set_trace_callback(callback)
        if self._reader is not None:
            self._reader.set_trace_callback(callback)

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("database is not connected")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """All-or-nothing writes; IMMEDIATE takes the write lock up front so two
        processes on one file serialise instead of failing half-way."""
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may have rolled back already (e.g. on a full disk); a second
                # ROLLBACK would raise and hide the real error.
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[aiosqlite.Connection]:
        """For exactly one write statement: SQLite runs a lone statement as a transaction
        of its own, so this saves the BEGIN and COMMIT round trips to the database thread.
        The lock still keeps it out of another coroutine's transaction."""
        async with self._lock:
            yield self.conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reads]:
        """Reads, on the loop's read-only connection: one consistent snapshot for all of
        them (a deferred transaction; for a single read it costs microseconds)."""
        if self._reader is None:  # an in-memory database (or not connected: conn says so)
            async with self._lock:
                conn = self.conn
                await conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    await conn.execute("COMMIT")
            return
        async with self._read_lock:
            reader = self._reader
            reader.execute("BEGIN")
            try:
                yield Reader(reader)
            finally:
                reader.execute("COMMIT")

    async def migrate(self) -> list[int]:
        """Apply every numbered migration not yet applied; returns the versions applied now."""
        await self.connect()
        if self._migrated:
            return []
        async with self._lock:
            await self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {
                row[0] for row in await fetch_all(self.conn, "SELECT version FROM schema_version")
            }
        applied: list[int] = []
        for version, sql in _migrations():
            if version in done:
                continue
            async with self.transaction() as conn:
                # Checked again under the write lock: another process may be migrating too.
                row = await fetch_one(
                    conn, "SELECT 1 FROM schema_version WHERE version = ?", (version,)
                )
                if row:
                    continue
                for statement in _split_sql(sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, now()),
                )
                applied.append(version)
        self._migrated = True
        return applied


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("storage") / "migrations"
    found: list[tuple[int, str]] = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _split_sql(sql: str) -> list[str]:
    # executescript would COMMIT our transaction, so run statements one by one.
    statements: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        candidate = "\n".join(buf).strip()
        if candidate.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        statements.append(rest)
    return statements
