"""PostgreSQL's own side of storage (storage/postgres.py), on the session's throwaway
cluster (tests/conftest.py): the schema matches SQLite's, workers migrating at once
migrate once, a user's turns never overlap across workers, one worker leads timed work,
and a database that goes away is a kind "try again in a moment", then found again.
Skipped, with the reason, where PostgreSQL is not installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.app import build_application, running
from storage import Database, StorageUnavailable, open_database
from storage.db import fetch_all, fetch_one, migrations
from storage.postgres import NAMESPACE, PostgresDatabase, _key, translate
from tests.botapi import BotAPIServer
from tests.conftest import Postgres
from tests.helpers import settings_for

ROOT = Path(__file__).resolve().parent.parent
AWAY = "Hiện tôi không truy cập được hồ sơ. Vui lòng thử lại sau giây lát."


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _empty(postgres: Postgres, name: str) -> str:
    postgres.sql(f"CREATE DATABASE {name}")
    return postgres.cluster.url(name)


def test_placeholders_become_numbered_outside_literals() -> None:
    assert translate("SELECT ? , '?', \"a?\" -- ?\n, ?") == (
        "SELECT $1 , '?', \"a?\" -- ?\n, $2",
        (0, 1),
    )
    assert translate("SELECT :a, ':b', x::text, :a, :c") == (
        "SELECT $1, ':b', x::text, $1, $2",
        ("a", "c"),
    )
    assert translate("SET (a, b) = (?1, ?2) WHERE (a, b) IS DISTINCT FROM (?1, ?2) AND id = ?3")[
        1
    ] == (0, 1, 2)
    # SQLite's CROSS JOIN ... ON (an inner join in a fixed order) has no ON in PostgreSQL.
    assert translate("FROM a CROSS JOIN b ON b.x = a.x")[0] == "FROM a JOIN b ON b.x = a.x"


async def test_both_dialects_have_the_same_tables_and_columns(
    postgres: Postgres, tmp_path: Path
) -> None:
    lite = open_database(tmp_path / "portal.db")
    await lite.migrate()
    await lite.close()
    with sqlite3.connect(tmp_path / "portal.db") as conn:
        sqlite_columns = set(
            conn.execute(
                "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c"
                " WHERE m.type = 'table'"
            ).fetchall()
        )
        sqlite_versions = {v for (v,) in conn.execute("SELECT version FROM schema_version")}
    pg = open_database(_empty(postgres, "schema_check"))
    await pg.migrate()
    try:
        async with pg.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public'",
            )
            pg_versions = {
                r[0] for r in await fetch_all(conn, "SELECT version FROM schema_version")
            }
    finally:
        await pg.close()
    assert {(r[0], r[1]) for r in rows} == sqlite_columns
    assert pg_versions == sqlite_versions


async def test_workers_starting_together_migrate_once(postgres: Postgres) -> None:
    url = _empty(postgres, "migrate_race")
    workers = [open_database(url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(w.migrate() for w in workers))
    finally:
        for w in workers:
            await w.close()
    assert sorted(map(len, applied))[:3] == [0, 0, 0]  # the others found it done
    assert max(applied, key=len) == [v for v, _ in migrations("postgresql")]


@contextlib.asynccontextmanager
async def _workers(postgres: Postgres, count: int) -> AsyncIterator[list[PostgresDatabase]]:
    url = postgres.fresh()
    dbs = [PostgresDatabase(url) for _ in range(count)]
    for db in dbs:
        await db.connect()
    try:
        yield dbs
    finally:
        for db in dbs:
            await db.close()


async def test_a_users_turns_never_overlap_across_workers(postgres: Postgres) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    async def update(db: PostgresDatabase, n: int) -> None:
        async with db.user_turn(700):
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(n)
            for _ in range(20):  # let the other workers' tasks run meanwhile
                await asyncio.sleep(0)
            inside.remove(n)

    async with _workers(postgres, 3) as dbs:
        await asyncio.gather(*(update(dbs[n % 3], n) for n in range(30)))
        # Another user's turn does not wait for this one's.
        async with dbs[0].user_turn(700), asyncio.timeout(5), dbs[1].user_turn(701):
            pass
    assert overlaps == []


@pytest.mark.both_backends
async def test_one_users_turns_never_overlap_in_one_process(db: Database) -> None:
    """SQLite's turns (one process): a lock per user, dropped when nobody waits."""
    inside: list[int] = []
    overlaps: list[int] = []

    async def update(n: int) -> None:
        async with db.user_turn(700):
            inside.append(n)
            overlaps.extend([n] if len(inside) > 1 else [])
            for _ in range(20):
                await asyncio.sleep(0)
            inside.remove(n)

    await asyncio.gather(*(update(n) for n in range(10)))
    async with db.user_turn(700), asyncio.timeout(5), db.user_turn(701):
        pass
    assert overlaps == []
    async with db.leader("outbox") as lead:
        assert await lead.check()


async def test_one_worker_leads_and_another_takes_over(postgres: Postgres) -> None:
    async with _workers(postgres, 2) as (a, b), a.leader("outbox") as lead_a:
        async with b.leader("outbox") as lead_b, b.leader("sweep") as other:
            assert await lead_a.check()
            assert not await lead_b.check()
            assert await other.check()  # another name, another leader
            assert await lead_a.check()  # still
        async with b.leader("outbox") as lead_b:
            assert not await lead_b.check()
            # Worker a's connection dies (the worker was killed): b leads.
            # (Waiting up to 5 s for it to be gone, and its session's lock with it.)
            postgres.sql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks"
                f" WHERE locktype = 'advisory' AND granted AND classid = {NAMESPACE}"
                f" AND objid = {_key('outbox') % 2**32} AND objsubid = 2"
            )
            assert await lead_b.check()
            assert not await lead_a.check()


async def test_a_lost_connection_is_storage_unavailable_then_found_again(
    postgres: Postgres,
) -> None:
    async with _workers(postgres, 1) as (db,):
        with pytest.raises(StorageUnavailable):
            async with db.transaction() as conn:
                await fetch_one(conn, "SELECT 1")
                postgres.sql(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    f" WHERE datname = '{_name(db.url)}'"
                    " AND pid <> pg_backend_pid()"
                )
                await fetch_one(conn, "SELECT 1")
        async with db.read() as conn:
            assert await fetch_one(conn, "SELECT 1") is not None


class _Cable:
    """A Unix-socket relay between the bot and the cluster, that can be unplugged: the
    bot's database server goes away (connections cut, new ones refused) and comes back."""

    def __init__(self, target: Path, folder: Path) -> None:
        self.target, self.folder = target, folder
        self.socket = folder / ".s.PGSQL.5432"
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def plug(self) -> None:
        self._server = await asyncio.start_unix_server(self._relay, path=str(self.socket))

    async def unplug(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.close()
        for writer in list(self._pipes):
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        self._pipes.clear()
        await self._server.wait_closed()
        self.socket.unlink(missing_ok=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._pipes.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.target))
        except OSError:
            writer.close()
            return
        self._pipes.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def test_the_user_is_told_to_try_again_while_the_database_is_away(
    postgres: Postgres, server: BotAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.fresh()
    cable = _Cable(postgres.cluster.dir / ".s.PGSQL.5432", tmp_path)
    await cable.plug()
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"postgresql://portal@/{_name(url)}?host={tmp_path}")
    settings = settings_for(server, tmp_path / "unused.db")
    an = server.user(700, "An", language_code="vi")
    async with running(build_application(settings), poll_timeout=1):
        await an.send("/start")
        welcome = an.last.text
        await cable.unplug()
        await an.send("/start")
        assert an.last.text == AWAY, an.transcript()
        await cable.plug()
        await an.send("/start")
        assert an.last.text == welcome, an.transcript()
    await cable.unplug()


def test_a_malformed_database_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    for url, says in (
        ("mysql://u@h/db", "must start with postgresql://"),
        ("postgresql://u:secret@host:port/db", "not a URL"),
        ("postgresql://u:secret@host/", "must name the database"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "migrate"],
            env=env | {"PORTAL_DATABASE_URL": url, "PORTAL_DB_PATH": str(tmp_path / "x.db")},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1 and "PORTAL_DATABASE_URL is invalid" in done.stderr
        assert says in done.stderr and "secret" not in done.stderr


def test_migrate_command_migrates_postgresql(postgres: Postgres, tmp_path: Path) -> None:
    url = _empty(postgres, "cli_migrate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {"PORTAL_DATABASE_URL": url, "PORTAL_DB_PATH": str(tmp_path / "unused.db")}
    runs = [
        subprocess.run(
            [sys.executable, "-m", "bot", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        for _ in range(2)
    ]
    versions = ", ".join(str(v) for v, _ in migrations("postgresql"))
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout.startswith(f"applied migrations {versions} to PostgreSQL database")
    assert runs[1].stdout.endswith("is up to date\n"), runs[1]
    assert not (tmp_path / "unused.db").exists()  # not SQLite's
