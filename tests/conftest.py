"""Shared fixtures: a real database per test, and (for end-to-end tests) the real bot
running against the Bot API emulator (playground/emulator/).

The database is a SQLite file; in a module marked `pytestmark = pytest.mark.both_backends`
each test using it runs twice, `[sqlite]` and `[postgresql]`, the second on a fresh
database of a throwaway PostgreSQL cluster the session starts (storage/pgserver.py), or
skipped, with the reason, where PostgreSQL is not installed. `-k postgresql` runs only
those; PORTAL_TEST_BACKEND=postgresql runs every test that uses the `db` or `settings`
fixtures on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import subprocess
import threading
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.app import build_application, running
from bot.context import portal
from bot.settings import Settings
from storage import Database, clock, open_database
from storage.clock import FixedClock
from storage.pgserver import Cluster, unavailable
from tests.botapi import BotAPIServer
from tests.helpers import settings_for


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's own PORTAL_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    yield


# The backend every test runs on unless its module is marked both_backends.
DEFAULT_BACKEND = os.environ.get("PORTAL_TEST_BACKEND", "sqlite")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_backends: run each test on SQLite and on PostgreSQL (tests/conftest.py)"
    )
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("sqlite_only"):
        backends = ["sqlite"]
    elif metafunc.definition.get_closest_marker("both_backends"):
        backends = ["sqlite", "postgresql"]
    else:
        return  # DEFAULT_BACKEND, unparametrized: the test's id does not change
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", DEFAULT_BACKEND))


class Postgres:
    """The session's cluster: a migrated template, copied for each test (fast)."""

    TEMPLATE = "portal_template"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._names = itertools.count(1)

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                str(self.cluster.bin / "psql"),
                *("-X", "-qAt", "-v", "ON_ERROR_STOP=1"),
                *("-d", self.cluster.url(database), "-c", statement),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr}")
        return done.stdout

    def migrate_template(self) -> None:
        self.sql(f"CREATE DATABASE {self.TEMPLATE}")
        _in_a_thread(_migrate(self.cluster.url(self.TEMPLATE)))

    def fresh(self) -> str:
        """A new database with the schema, empty; its URL."""
        name = f"test_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return self.cluster.url(name)


async def _migrate(url: str) -> None:
    database = open_database(url)
    try:
        await database.migrate()
    finally:
        await database.close()


def _in_a_thread(coroutine: object) -> None:
    """Run a coroutine to the end on a loop of its own, away from pytest-asyncio's."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)  # type: ignore[arg-type]
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


_postgres: Postgres | str | None = None  # started on first use: the reason if it cannot be


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    global _postgres
    why = unavailable()
    if why is not None:
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    if isinstance(_postgres, str):
        pytest.skip(_postgres)
    cluster = Cluster()
    try:
        cluster.start()
        pg = Postgres(cluster)
        pg.migrate_template()
    except Exception as exc:
        cluster.stop()
        _postgres = f"PostgreSQL tests skipped: the cluster did not start: {exc}"
        pytest.skip(_postgres)
    try:
        yield pg
    finally:
        cluster.stop()


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    """The PostgreSQL database of this test, when it runs on PostgreSQL (else None), also
    as PORTAL_DATABASE_URL: every Settings the test makes, and every bot process it
    starts, use it."""
    if backend != "postgresql":
        return None
    pg: Postgres = request.getfixturevalue("postgres")
    url = pg.fresh()
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    return url


@pytest.fixture
def db_path(tmp_path: Path, database_url: str | None) -> Path:
    """The SQLite file; unused on PostgreSQL (database_url), where tests that open the
    database themselves use tests.helpers.database_for(db_path)."""
    return tmp_path / "portal.db"


@pytest.fixture
def database_target(db_path: Path, database_url: str | None) -> str | Path:
    """What open_database() opens for this test: the PostgreSQL URL or the SQLite file."""
    return database_url if database_url is not None else db_path


@pytest.fixture
async def db(database_target: str | Path) -> AsyncIterator[Database]:
    database = open_database(database_target)
    await database.migrate()
    yield database
    await database.close()


# --- End to end: the real Application against the Bot API emulator ----------------------


@pytest.fixture
async def server() -> AsyncIterator[BotAPIServer]:
    api = BotAPIServer(bot_username="portal_test_bot")
    await api.start()
    yield api
    await api.stop()
    # Telegram refuses a second answer to a tap (the emulator too, and keeps the refusal):
    # a handler that answers twice has lost the reply it meant to show, in any test.
    answered_twice = [e for e in api.errors if e["method"] == "answerCallbackQuery"]
    assert not answered_twice, answered_twice
    # Plain text that shows users an HTML escape, e.g. an alert built from escaped names.
    assert not api.garbled, api.garbled
    # A parameter the method does not take, or a reply_markup without buttons: Telegram
    # lets them pass, but the request was not what the bot meant (see the emulator).
    not_meant = [e for e in api.errors if e.get("strict")]
    assert not not_meant, not_meant


@pytest.fixture
def settings(server: BotAPIServer, db_path: Path) -> Settings:
    return settings_for(server, db_path)  # with PORTAL_DATABASE_URL on PostgreSQL


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    async with running(build_application(settings), poll_timeout=1) as application:
        yield application


@pytest.fixture
def bot_db(app: Application) -> Database:  # type: ignore[type-arg]
    """The running bot's own database handle, for arranging and checking state."""
    return portal(app).db


@pytest.fixture
def pinned_clock() -> Iterator[FixedClock]:
    """The clock standing at 2 March 2026, 10:00 in Sydney, for a test whose children have
    fixed dates of birth: as the real date moves on they would meet the practice's age
    rules (issue #20: Clinical access limited at 12, holding ended at 18) and the test
    would start failing on a birthday."""
    moment = dt.datetime(2026, 3, 2, 10, tzinfo=zoneinfo.ZoneInfo("Australia/Sydney"))
    with clock.use(FixedClock(moment)) as fixed:
        yield fixed
