"""Shared fixtures: a real SQLite file per test, and (for end-to-end tests) the real bot
running against the Bot API emulator (playground/emulator/)."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.app import build_application, running
from bot.context import portal
from bot.settings import Settings
from storage import Database, clock
from storage.clock import FixedClock
from tests.botapi import BotAPIServer
from tests.helpers import settings_for


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's own PORTAL_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "portal.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = Database(db_path)
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
    return settings_for(server, db_path)


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
