"""The database handle: explicit transactions, numbered migrations, and three connections.

Database is the interface both dialects offer; this module is SQLite's (SqliteDatabase),
storage/postgres.py PostgreSQL's. What follows is about SQLite.

SQLite answers a lookup or a small write in tens of microseconds; a trip to aiosqlite's
thread and back costs more than that in waiting (the thread waits for the loop to release
the GIL, then the loop must wake up again), once per statement. So statements run on the
event loop wherever they cannot wait for anything:

- Reads, on a read-only connection: in WAL mode a reader never waits for a writer.
- Writes, on a writer that never waits either (busy timeout 0): its BEGIN IMMEDIATE takes
  the write lock at once or fails at once. Holding it, no statement of the transaction
  can wait for another connection. When another process (a second worker, the CLI)
  holds the lock, the transaction runs on aiosqlite's thread instead, which may wait up
  to BUSY_TIMEOUT_MS without stopping the loop.
- The writer on the loop never checkpoints the WAL (copying it into the database file and
  flushing both to disk can take milliseconds): after every CHECKPOINT_EVERY commits,
  aiosqlite's thread does. (The commit after a checkpoint, which starts the WAL afresh,
  still flushes the WAL's small header on the loop: one flush per CHECKPOINT_EVERY.)
- A database that is not in WAL mode (a file system without shared memory) runs all of
  it on aiosqlite's thread: there, readers and writers wait for each other.

A transaction holding the write lock on the loop also means a step that writes ten rows
holds it for microseconds, not for ten trips between two threads while every other
update's writes queue behind it (benchmarks/README).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import aiosqlite

from storage import clock

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# Commits by the loop's writer between two checkpoints on aiosqlite's thread; SQLite's own
# automatic checkpoint, which the loop's writer does not do, comes after ~1000 pages.
CHECKPOINT_EVERY = 200
# A WAL reader waits only in rare moments (another connection recovering the WAL after a
# crash); the loop waits with it, so not for long: past this the read fails and the user is
# told to try again.
READ_BUSY_TIMEOUT_MS = 250


# Whether the update being handled has committed a change (see watch_commits()).
_committed_here: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "committed_here", default=None
)


def watch_commits() -> None:
    """From now on in this task (one update), note whether anything is committed."""
    _committed_here.set([])


def committed_here() -> bool:
    """True once the current update has committed a change: after that, nobody may be told
    that nothing was changed."""
    return bool(_committed_here.get())


def _note_commit() -> None:
    noted = _committed_here.get()
    if noted is not None and not noted:
        noted.append(True)


# A statement's parameters, as sqlite3 takes them: by position or by :name.
Params: TypeAlias = Sequence[Any] | Mapping[str, Any]


class StorageError(Exception):
    """A storage failure worth telling the operator about in one line."""


def now() -> int:
    """Seconds since the epoch; every timestamp in the database uses this unit. Read from
    the one clock (storage/clock.py), which tests replace."""
    return clock.now()


class StorageUnavailable(StorageError):
    """The database cannot be reached right now (a lost connection, a server restarting):
    the update fails, the user is asked to try again in a moment, and the next query
    connects afresh."""


class Record(Protocol):
    """A result row of either backend (sqlite3.Row, asyncpg.Record): by position, by
    column name, and dict(row)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> Iterable[str]: ...


class Rows(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    async def fetchone(self) -> Record | None: ...

    async def fetchall(self) -> Iterable[Record]: ...


class Reads(Protocol):
    """What a read needs of a connection: the loop's reader, or a transaction's own
    connection (to see its own writes)."""

    async def execute(self, sql: str, parameters: Params | None = None) -> Rows: ...

    async def execute_fetchall(
        self, sql: str, parameters: Params | None = None
    ) -> Iterable[Record]: ...


class Writes(Reads, Protocol):
    """The connection of a transaction() or statement(): the loop's writer, or aiosqlite's
    when another process holds the write lock."""

    @property
    def in_transaction(self) -> bool: ...


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    async def fetchone(self) -> Record | None:
        row: Record | None = self._cursor.fetchone()
        return row

    async def fetchall(self) -> list[Record]:
        return self._cursor.fetchall()


class OnLoop:
    """A connection used on the event loop's thread (the reader, the writer that never
    waits), with the call shape of aiosqlite's so that repository functions take either."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def begin_immediate(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        self._conn.set_trace_callback(callback)

    def close(self) -> None:
        self._conn.close()

    async def execute(self, sql: str, parameters: Params | None = None) -> _Cursor:
        return _Cursor(self._conn.execute(sql, () if parameters is None else parameters))

    async def execute_fetchall(self, sql: str, parameters: Params | None = None) -> list[Record]:
        return self._conn.execute(sql, () if parameters is None else parameters).fetchall()


async def fetch_one(conn: Reads, sql: str, params: Params = ()) -> Record | None:
    """One row; through aiosqlite, in one trip to its thread (execute, then fetchone, would
    be two)."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(conn: Reads, sql: str, params: Params = ()) -> list[Record]:
    """Every row; through aiosqlite, in one trip to its thread."""
    return list(await conn.execute_fetchall(sql, params))


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Database:
    """A database of either dialect: SQLite (this module) or PostgreSQL
    (storage/postgres.py). `Database(path)` opens SQLite as always; `Database(url)` with a
    postgresql:// URL, PostgreSQL (open_database() picks from the settings).

    What every backend offers: connect/close/migrate; transaction() (all-or-nothing
    writes), statement() (one write), read() (one consistent snapshot); user_turn(key)
    (one user's updates one at a time, across every worker); leader(name) (timed work
    run by one worker of the cluster).
    """

    dialect: str = ""

    def __new__(cls, target: str | Path = "", *args: Any, **kwargs: Any) -> Database:
        if cls is Database:
            if is_postgres_url(target):
                from storage.postgres import PostgresDatabase

                return super().__new__(PostgresDatabase)
            return super().__new__(SqliteDatabase)
        return super().__new__(cls)

    def __init__(self, target: str | Path, /) -> None:
        """Each dialect's class has its own; a subclass that lends another's connection
        (playground/demo.py) has nothing to open."""

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def checkpointed(self) -> None:
        """Wait for background upkeep (SQLite's WAL checkpoint); nothing elsewhere."""

    async def migrate(self) -> list[int]:
        raise NotImplementedError

    def transaction(self, *, change: bool = True) -> AbstractAsyncContextManager[Writes]:
        raise NotImplementedError

    def statement(self, *, change: bool = True) -> AbstractAsyncContextManager[Writes]:
        raise NotImplementedError

    def read(self) -> AbstractAsyncContextManager[Reads]:
        raise NotImplementedError

    def user_turn(self, key: int) -> AbstractAsyncContextManager[None]:
        """While inside, no other update of this user (key: their Telegram id) runs, in
        this process or any other worker of the cluster; others wait for their turn, in
        the order they asked."""
        raise NotImplementedError

    def leader(self, name: str) -> Leadership:
        """`async with db.leader("outbox") as lead:` then `if await lead.check():` before
        each round of timed work: True while this worker is the one that does `name`
        across the cluster. Kept until the block ends (or the worker dies)."""
        raise NotImplementedError


class Target(Protocol):
    @property
    def database(self) -> str | Path: ...


def open_database(target: Target | str | Path) -> Database:
    """The database that settings (their `.database`), a postgresql:// URL or a SQLite path
    name: PostgreSQL for a URL, else SQLite. Not connected yet."""
    if not isinstance(target, str | Path):
        target = target.database
    return Database(target)


class Leadership:
    """Who does one kind of timed work. SQLite's: one process on one file, always this one."""

    async def check(self) -> bool:
        return True

    async def __aenter__(self) -> Leadership:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class TurnLocks:
    """One asyncio.Lock per key with somebody inside or waiting, dropped after the last.
    asyncio.Lock serves waiters first come, first served: a user's updates keep their order.
    The key None is a key like any other (polling's updates of nobody, in one line)."""

    def __init__(self) -> None:
        self._locks: dict[int | None, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def turn(self, key: int | None) -> AsyncIterator[None]:
        lock, waiting = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                yield
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                del self._locks[key]

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing kept."""
        return not self._locks

    def busy(self) -> set[int]:
        """Keys with somebody inside or waiting."""
        return {key for key in self._locks if key is not None}


class SqliteDatabase(Database):
    """Owns the connections; hands each out one user at a time.

    The writers are shared by every handler, so a lock keeps one coroutine's transaction
    from seeing (or committing) another's half-done writes; the reader has a lock of its
    own, for the snapshot read() opens.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._turns = TurnLocks()
        self._conn: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: OnLoop | None = None
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        # The bot and its persistence both migrate on start; once per connection is enough.
        self._migrated = False
        self._commits_unchecked = 0  # by the loop's writer since the last checkpoint
        self._checkpoint: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except Exception as exc:  # sqlite3.OperationalError for a bad path
            raise StorageError(f"cannot open database {self.path!r}: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = await fetch_one(conn, "PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        if self.path in ("", ":memory:"):  # private to one connection: all of it runs there
            self._conn = conn
            return
        if mode is None or str(mode[0]).lower() != "wal":
            # Without WAL a reader can wait for a writer and a writer for a reader, so
            # nothing may run on the loop: all of it goes through aiosqlite's thread.
            log.warning("%s is not in WAL mode (%s): slower, but safe", self.path, mode)
            self._conn = conn
            return
        # Opened after aiosqlite's, which made the file and switched it to WAL.
        opened: list[sqlite3.Connection] = []
        try:
            reader = sqlite3.connect(self.path, isolation_level=None)
            opened.append(reader)
            reader.row_factory = sqlite3.Row
            reader.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS}")
            reader.execute("PRAGMA query_only = ON")  # a write here would block the loop
            writer = sqlite3.connect(self.path, isolation_level=None)
            opened.append(writer)
            writer.row_factory = sqlite3.Row
            writer.execute("PRAGMA busy_timeout = 0")  # never waits: see _begin_on_loop
            writer.execute("PRAGMA synchronous = NORMAL")
            writer.execute("PRAGMA foreign_keys = ON")
            writer.execute("PRAGMA wal_autocheckpoint = 0")  # aiosqlite's thread does it
        except sqlite3.Error as exc:
            for done in opened:
                done.close()
            await conn.close()
            raise StorageError(f"cannot open database {self.path!r} on the loop: {exc}") from exc
        self._conn, self._reader, self._writer = conn, reader, OnLoop(writer)

    async def close(self) -> None:
        await self.checkpointed()
        async with self._lock, self._read_lock:  # not under a transaction or a read
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
            self._migrated = False

    async def checkpointed(self) -> None:
        """Wait until the WAL checkpoint under way on aiosqlite's thread, if any, is done."""
        if self._checkpoint is not None:
            await self._checkpoint

    async def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """See every statement the connections run (the benchmark's EXPLAINs, tests)."""
        # aiosqlite types it as a Callable, but hands it to sqlite3, where None stops tracing.
        await self.conn.set_trace_callback(callback)  # type: ignore[arg-type]  # None stops it
        if self._reader is not None:
            self._reader.set_trace_callback(callback)
        if self._writer is not None:
            self._writer.set_trace_callback(callback)

    @property
    def conn(self) -> aiosqlite.Connection:
        """aiosqlite's connection, on its own thread."""
        if self._conn is None:
            raise StorageError("database is not connected")
        return self._conn

    def user_turn(self, key: int) -> AbstractAsyncContextManager[None]:
        # One process per file (the CLI's commands do not handle updates): a lock in it.
        return self._turns.turn(key)

    def leader(self, name: str) -> Leadership:
        return Leadership()

    @asynccontextmanager
    async def transaction(self, *, change: bool = True) -> AsyncIterator[Writes]:
        """All-or-nothing writes; IMMEDIATE takes the write lock up front so two
        processes on one file serialise instead of failing half-way. `change=False` for
        the bot's own bookkeeping (conversation steps), which users do not see as one."""
        async with self._lock:
            conn: Writes | None = await self._begin_on_loop()
            if conn is None:
                conn = self.conn
                await conn.execute("BEGIN IMMEDIATE")
            async with self._committing(conn):
                yield conn
        if change:
            _note_commit()

    @asynccontextmanager
    async def statement(self, *, change: bool = True) -> AsyncIterator[Writes]:
        """For exactly one write statement. On the loop it is a transaction like any
        other; on aiosqlite's thread it runs alone, as a transaction of its own, which
        saves the trips there and back for BEGIN and COMMIT."""
        async with self._lock:
            conn = await self._begin_on_loop()
            if conn is None:
                yield self.conn
            else:
                async with self._committing(conn):
                    yield conn
        if change:
            _note_commit()

    async def _begin_on_loop(self) -> OnLoop | None:
        """The loop's writer, in a transaction holding the write lock; None when there is
        none (an in-memory database) or another process holds the lock right now: then
        aiosqlite's thread waits for it, and the loop does not."""
        writer = self._writer
        if writer is None:
            return None
        if writer.in_transaction:  # only if a ROLLBACK failed: never keep the lock held
            log.warning("the loop's writer was left in a transaction; rolling it back")
            await writer.execute("ROLLBACK")
        try:
            writer.begin_immediate()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            return None
        return writer

    @asynccontextmanager
    async def _committing(self, conn: Writes) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            # SQLite may have rolled back already (e.g. on a full disk); a second
            # ROLLBACK would raise and hide the real error.
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        # Only a COMMIT that failed is rolled back: one cancelled while aiosqlite's thread
        # runs it still commits there, and a ROLLBACK queued behind it would fail and hide
        # the cancellation.
        try:
            await conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:  # a COMMIT that failed leaves the transaction open
                await conn.execute("ROLLBACK")
            raise
        if conn is self._writer:
            self._committed_on_loop()

    def _committed_on_loop(self) -> None:
        self._commits_unchecked += 1
        if self._commits_unchecked >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._commits_unchecked = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        """What SQLite's automatic checkpoint would do, on aiosqlite's thread. PASSIVE: it
        waits for no reader. Our writes wait for it, as they did for SQLite's own: with
        writes going on, it would never catch up with the end of the WAL, and the WAL is
        only started afresh once it has."""
        try:
            async with self._lock:
                # Its row read, so that the statement is done: left open on aiosqlite's
                # connection it could hold a read transaction that fails every later one.
                await self.conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # harmless: the next checkpoint copies these pages too
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._checkpoint = None

    def read(self) -> AbstractAsyncContextManager[Reads]:
        """Reads, on the loop's read-only connection: one consistent snapshot for all of
        them (a deferred transaction; for a single read it costs microseconds)."""
        if self._reader is None:  # an in-memory database (or not connected: conn says so)
            return self._read_on_thread()
        return _LoopRead(self)

    @asynccontextmanager
    async def _read_on_thread(self) -> AsyncIterator[Reads]:
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


class _LoopRead:
    """SqliteDatabase.read() on the loop's reader. A class, not @asynccontextmanager,
    whose generator costs ~1.3 µs more on each of the ~3 reads of every update."""

    __slots__ = ("_db", "_reader")

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def __aenter__(self) -> Reads:
        lock = self._db._read_lock
        await lock.acquire()
        try:
            reader = self._db._reader
            if reader is None:  # closed while this read waited for the lock
                raise StorageError("database is not connected")
            reader.execute("BEGIN")
        except BaseException:
            lock.release()
            raise
        self._reader = reader
        return OnLoop(reader)

    async def __aexit__(self, *exc: object) -> None:
        try:
            self._reader.execute("COMMIT")
        finally:
            self._db._read_lock.release()


def _numbered(folder: Traversable) -> dict[int, tuple[str, str]]:
    found: dict[int, tuple[str, str]] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found[int(name[:4])] = (name, entry.read_text(encoding="utf-8"))
    return found


def migrations(dialect: str = "sqlite") -> list[tuple[int, str]]:
    """(version, SQL) in order, for this dialect. storage/migrations/*.sql are portable
    (from 0016 on) and run on both; a file of the same number under
    storage/migrations/<dialect>/ replaces one whose SQL cannot be. A `<NNNN>_baseline.sql`
    there stands for every version up to NNNN: PostgreSQL starts from the schema as of
    0015, written once in its own words, rather than replaying SQLite's history."""
    folder = resources.files("storage") / "migrations"
    shared = {version: sql for version, (_, sql) in _numbered(folder).items()}
    own = _numbered(folder / dialect)
    baseline = max((v for v, (name, _) in own.items() if "baseline" in name), default=0)
    steps = {v: sql for v, sql in shared.items() if v > baseline}
    steps.update({v: sql for v, (_, sql) in own.items()})
    return sorted(steps.items())


def covered(dialect: str, version: int) -> list[int]:
    """The versions one applied migration stands for: a baseline, all the shared ones up to
    it (recorded as applied, so both dialects list the same versions)."""
    folder = resources.files("storage") / "migrations"
    own = _numbered(folder / dialect)
    if version in own and "baseline" in own[version][0]:
        return sorted({v for v in _numbered(folder) if v <= version} | {version})
    return [version]


def _migrations() -> list[tuple[int, str]]:
    return migrations("sqlite")


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
