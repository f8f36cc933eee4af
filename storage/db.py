"""The database handle: one aiosqlite connection, explicit transactions, numbered migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

BUSY_TIMEOUT_MS = 5000


class StorageError(Exception):
    """A storage failure worth telling the operator about in one line."""


def now() -> int:
    """Seconds since the epoch; every timestamp in the database uses this unit."""
    return int(time.time())


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[object] = ()
) -> aiosqlite.Row | None:
    """One row in one trip to the database thread (execute, then fetchone, would be two)."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[object] = ()
) -> list[aiosqlite.Row]:
    """Every row in one trip to the database thread."""
    return list(await conn.execute_fetchall(sql, params))


class Database:
    """Owns the connection; hands it out one user at a time.

    A single connection is shared by every handler, so a lock keeps one coroutine's
    transaction from seeing (or committing) another's half-done writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
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
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
            self._migrated = False

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
        """For exactly one SQL statement, read or write: SQLite runs a lone statement as a
        transaction of its own, so this saves the BEGIN and COMMIT round trips to the
        database thread. The lock still keeps it out of another coroutine's transaction."""
        async with self._lock:
            yield self.conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A consistent snapshot for several reads (a deferred transaction)."""
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                await conn.execute("COMMIT")

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
