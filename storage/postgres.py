"""PostgreSQL behind the same interface as SQLite's Database (storage/db.py), with asyncpg.

The repository functions (storage/*.py) are one set for both dialects; what differs stays
here, in a small dialect layer:

- Placeholders: the repositories write `?`, `?NNN` or `:name`; PgConnection rewrites them
  into asyncpg's `$1, $2, ...`, leaving string literals, quoted names and comments alone
  (translate(), cached per statement). The one other rewrite: SQLite's `CROSS JOIN ... ON`
  (an inner join whose order SQLite's planner keeps) is `JOIN ... ON` here.
- Results: asyncpg's Record reads by position and by name like sqlite3.Row; rowcount comes
  from the command's status ("UPDATE 3"); there is no lastrowid (the repositories use
  RETURNING id, which SQLite has too).
- Transactions: each transaction() runs on a pooled connection in BEGIN..COMMIT and first
  takes one cluster-wide advisory lock, so write transactions run one at a time, as they
  do on SQLite (BEGIN IMMEDIATE): every repository's check-then-write stays as safe as it
  is on SQLite, on any number of workers, and an outbox row or a sweep step is claimed by
  one worker only (its claim is an UPDATE ... WHERE it is still free, under that lock).
  At about a thousand small write transactions a second (benchmarks/drivers.py) this is
  far above what the bot writes. A process's writers queue on an asyncio lock first, so
  at most one of its pooled connections waits for the cluster's lock.
- read(): a pooled connection in a REPEATABLE READ READ ONLY transaction: one snapshot.
- A lost connection, or a server that is down, raises StorageUnavailable; the pool drops
  the broken connection and connects afresh on the next acquire.

Advisory lock keys: a user's turn takes the one-bigint key of their Telegram id; the write
lock, migrations and leaders use two-int keys (namespace, n), a separate key space.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, NoReturn

import asyncpg

from storage.db import (
    Database,
    Leadership,
    Params,
    Reads,
    Record,
    StorageError,
    StorageUnavailable,
    Writes,
    _note_commit,
    _split_sql,
    covered,
    migrations,
    now,
)

log = logging.getLogger(__name__)

# The first half of every two-int advisory key of ours ("PBOT"), so that another
# application's locks on the same server cannot collide with them.
NAMESPACE = 0x50424F54
WRITE_KEY = 1  # every write transaction, one at a time
MIGRATE_KEY = 2  # `migrate`, from however many workers at once

POOL_SIZE = 10
TURN_POOL_SIZE = 64  # users with an update in flight at once (bot/processing.py runs 32)

# What a lost connection or an unreachable server raises (asyncpg's own, the socket's,
# and the server's "shutting down" / "starting up" / "too many connections").
_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    # A connection the server dropped mid-operation can be left in a state asyncpg
    # refuses to use again ("cannot switch to state ..."): as good as lost.
    asyncpg.InternalClientError,
)


def _unavailable(exc: BaseException) -> NoReturn:
    raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc


_TOKENS = re.compile(
    r"'(?:[^']|'')*'"  # a string literal
    r'|"(?:[^"]|"")*"'  # a quoted name
    r"|--[^\n]*"  # a comment
    r"|::"  # a cast, not a :name
    r"|\?\d*"
    r"|(?<![:\w]):[A-Za-z_]\w*"
    r"|\bCROSS\s+JOIN\b"
)


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, tuple[int | str, ...]]:
    """`?` and `:name` placeholders as `$n`; with what each $n takes: a position in the
    parameters, or a name."""
    order: list[int | str] = []
    named: dict[str, int] = {}

    def place(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            order.append(len(order))
            return f"${len(order)}"
        if token.startswith("?"):  # ?NNN: the NNNth parameter, as often as it is named
            if numbered is None:
                raise StorageError("?NNN and plain ? placeholders in one statement")
            numbered.add(int(token[1:]))
            return f"${token[1:]}"
        if token.upper().startswith("CROSS"):
            # SQLite's CROSS JOIN ... ON is an inner join whose order its planner keeps;
            # PostgreSQL has no ON after CROSS JOIN, and plans the order itself.
            return "JOIN"
        if token.startswith(":") and token != "::":
            name = token[1:]
            if name not in named:
                order.append(name)
                named[name] = len(order)
            return f"${named[name]}"
        return token

    numbered: set[int] | None = set() if re.search(r"\?\d", sql) else None
    text = _TOKENS.sub(place, sql)
    if numbered:
        order.extend(range(max(numbered)))  # positions 0..N-1, each once
    return text, tuple(order)


def _arguments(order: tuple[int | str, ...], parameters: Params | None) -> list[Any]:
    if parameters is None:
        return []
    if isinstance(parameters, Mapping):
        return [parameters[str(name)] for name in order]
    values = list(parameters)
    if len(values) != len(order):
        raise StorageError(f"{len(order)} placeholders, {len(values)} parameters")
    return values


_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES|SHOW|EXPLAIN)\b|\bRETURNING\b", re.I)


class PgRows:
    def __init__(self, rows: list[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid: int | None = None  # RETURNING id instead

    async def fetchone(self) -> Record | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[Record]:
        return list(self._rows)


class PgConnection:
    """One pooled connection with the call shape of storage/db.py's Reads and Writes."""

    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.is_in_transaction()

    async def execute(self, sql: str, parameters: Params | None = None) -> PgRows:
        text, order = translate(sql)
        args = _arguments(order, parameters)
        try:
            if _RETURNS_ROWS.search(text):
                rows = await self._conn.fetch(text, *args)
                return PgRows(rows, len(rows))
            status = await self._conn.execute(text, *args)
        except _LOST as exc:
            _unavailable(exc)
        count = status.rsplit(" ", 1)[-1]
        return PgRows([], int(count) if count.isdigit() else 0)

    async def execute_fetchall(self, sql: str, parameters: Params | None = None) -> list[Record]:
        text, order = translate(sql)
        try:
            return list(await self._conn.fetch(text, *_arguments(order, parameters)))
        except _LOST as exc:
            _unavailable(exc)


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """asyncpg resets a connection given back to the pool (unlocks session advisory locks,
    closes cursors, RESET ALL): one more round trip per use. Ours leave no session state:
    their locks are transaction-scoped, and the migration's is unlocked by itself."""


async def _connect_or_let_go(url: str) -> asyncpg.Connection[asyncpg.Record]:
    """A connection of its own; closed, not leaked, if the caller is cancelled while it is
    being made (a worker stopping while its leader check reconnects)."""
    connecting = asyncio.ensure_future(asyncpg.connect(url, server_settings=_named()))
    try:
        return await asyncio.shield(connecting)
    except asyncio.CancelledError:

        def let_go(done: asyncio.Future[asyncpg.Connection[asyncpg.Record]]) -> None:
            if not done.cancelled() and done.exception() is None:
                done.result().terminate()

        connecting.add_done_callback(let_go)
        raise


def _named() -> dict[str, str]:
    """Connections named after their worker's process: pg_stat_activity then tells an
    operator (and the multi-worker test) which worker holds which lock."""
    return {"application_name": f"portal-bot {os.getpid()}"}


def _key(name: str) -> int:
    """A name as the second half of a two-int advisory key (a signed 32-bit int)."""
    return zlib.crc32(name.encode()) - 2**31


class PgLeadership(Leadership):
    """A connection of its own holding a session advisory lock: the server frees it when
    the worker (or its connection) dies, and another worker's check() then takes it."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._key = _key(name)
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._held = False
        # The sender, the sweep and the menus ask from tasks of their own: one connection.
        self._checking = asyncio.Lock()

    async def check(self) -> bool:
        async with self._checking:
            return await self._check()

    async def _check(self) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                if self._conn is not None:
                    self._conn.terminate()  # lost: its transport too
                self._conn, self._held = None, False
                self._conn = await _connect_or_let_go(self._url)
            if self._held:  # a live connection still holds its session's lock
                await self._conn.execute("SELECT 1")
            else:
                self._held = bool(
                    await self._conn.fetchval(
                        "SELECT pg_try_advisory_lock($1, $2)", NAMESPACE, self._key
                    )
                )
        except _LOST as exc:
            log.warning("leader check failed (%s): not the leader for now", type(exc).__name__)
            await self._drop()
        return self._held

    async def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            conn.terminate()

    async def __aexit__(self, *exc: object) -> None:
        async with self._checking:
            await self._let_go()

    async def _let_go(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is None:
            return
        if conn.is_closed():
            conn.terminate()
            return
        try:
            await conn.close(timeout=5)  # the session's locks go with it
        except Exception:
            conn.terminate()


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._turn_pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._opening = asyncio.Lock()
        self._writing = asyncio.Lock()
        self._migrated = False

    def __repr__(self) -> str:
        return "PostgresDatabase(<url>)"  # the URL may hold a password

    async def connect(self) -> None:
        async with self._opening:
            if self._pool is not None:
                return
            try:
                self._pool = await asyncpg.create_pool(
                    self.url,
                    server_settings=_named(),
                    min_size=1,
                    max_size=self._pool_size,
                    reset=_no_reset,
                )
            except _LOST as exc:
                raise StorageUnavailable(
                    f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}"
                ) from exc
            except (asyncpg.PostgresError, ValueError) as exc:  # bad database, user, URL
                raise StorageError(f"cannot open the PostgreSQL database: {exc}") from exc

    async def close(self) -> None:
        for pool in (self._turn_pool, self._pool):
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), 10)
                except _LOST:  # TimeoutError is an OSError
                    pool.terminate()
        self._pool = self._turn_pool = None
        self._migrated = False

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise StorageError("database is not connected")
        return self._pool

    @asynccontextmanager
    async def _acquired(
        self, pool: asyncpg.Pool[asyncpg.Record] | None = None
    ) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection; a lost one is not given back for reuse (asyncpg closes a
        connection released while broken, and the pool opens a new one when next asked)."""
        pool = pool or self.pool
        try:
            conn = await pool.acquire()
        except _LOST as exc:
            _unavailable(exc)
        try:
            yield conn
        finally:
            try:
                await pool.release(conn)
            except _LOST:
                with suppress(*_LOST):
                    conn.terminate()

    @asynccontextmanager
    async def _in_transaction(
        self, begin: str, *, lock: bool, change: bool
    ) -> AsyncIterator[PgConnection]:
        # Writers of this process queue here, not each on a pooled connection waiting for
        # the cluster's lock: the one holding it can always get a second connection (a
        # read inside its transaction) however many updates want to write.
        async with self._writing if lock else contextlib.nullcontext(), self._acquired() as raw:
            try:
                await raw.execute(begin)
                if lock:
                    await raw.execute("SELECT pg_advisory_xact_lock($1, $2)", NAMESPACE, WRITE_KEY)
            except _LOST as exc:
                _unavailable(exc)
            try:
                yield PgConnection(raw)
            except BaseException:
                # The server rolls back a transaction whose connection died (asyncpg
                # then detaches it from the pool: even is_closed() raises).
                with suppress(*_LOST):
                    if not raw.is_closed() and raw.is_in_transaction():
                        await raw.execute("ROLLBACK")
                raise
            try:
                await raw.execute("COMMIT")
            except _LOST as exc:
                _unavailable(exc)
        if change:
            _note_commit()

    def transaction(self, *, change: bool = True) -> AbstractAsyncContextManager[Writes]:
        """All-or-nothing writes, one transaction at a time across the cluster (see above)."""
        return self._in_transaction("BEGIN", lock=True, change=change)

    def statement(self, *, change: bool = True) -> AbstractAsyncContextManager[Writes]:
        """One write: under the same lock as a transaction, so it is one."""
        return self._in_transaction("BEGIN", lock=True, change=change)

    def read(self) -> AbstractAsyncContextManager[Reads]:
        """Reads from one snapshot; they wait for no writer."""
        return self._in_transaction(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", lock=False, change=False
        )

    @asynccontextmanager
    async def _user_turn(self, key: int) -> AsyncIterator[None]:
        # Connections of their own: a turn holds one for the whole update, while the
        # update's own transactions take others from the main pool.
        if self._turn_pool is None:
            async with self._opening:
                if self._turn_pool is None:
                    try:
                        self._turn_pool = await asyncpg.create_pool(
                            self.url,
                            server_settings=_named(),
                            min_size=0,
                            max_size=TURN_POOL_SIZE,
                            reset=_no_reset,
                        )
                    except _LOST as exc:
                        _unavailable(exc)
        async with self._acquired(self._turn_pool) as raw:
            try:
                await raw.execute("BEGIN")
                await raw.execute("SELECT pg_advisory_xact_lock($1)", key)
            except _LOST as exc:
                _unavailable(exc)
            try:
                yield
            finally:
                # COMMIT releases the lock; a dead connection's lock is gone already.
                with suppress(*_LOST):
                    await raw.execute("COMMIT")

    def user_turn(self, key: int) -> AbstractAsyncContextManager[None]:
        """A transaction holding pg_advisory_xact_lock(key) on a connection of its own for
        the whole block: another worker's turn for the same key waits for it. The server
        frees it at COMMIT, or when this worker's connection dies."""
        return self._user_turn(key)

    def leader(self, name: str) -> Leadership:
        return PgLeadership(self.url, name)

    async def migrate(self) -> list[int]:
        """Under an advisory lock, so that workers starting together migrate once."""
        await self.connect()
        if self._migrated:
            return []
        applied: list[int] = []
        async with self._acquired() as conn:
            try:
                await conn.execute("SELECT pg_advisory_lock($1, $2)", NAMESPACE, MIGRATE_KEY)
                try:
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_version"
                        " (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
                    )
                    done = {r[0] for r in await conn.fetch("SELECT version FROM schema_version")}
                    for version, sql in migrations(self.dialect):
                        if version in done:
                            continue
                        async with conn.transaction():
                            for statement in _split_sql(sql):
                                await conn.execute(statement)
                            await conn.executemany(
                                "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)"
                                " ON CONFLICT (version) DO NOTHING",
                                [(v, now()) for v in covered(self.dialect, version)],
                            )
                        applied.append(version)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1, $2)", NAMESPACE, MIGRATE_KEY)
            except _LOST as exc:
                _unavailable(exc)
        self._migrated = True
        return applied
