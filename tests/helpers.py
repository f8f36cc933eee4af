"""Arranging the world for end-to-end tests with the same functions the CLI uses."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot import invitations
from bot.settings import Settings, load_settings
from storage import Database, practitioners, state
from tests.botapi import BotAPIServer, SimUser

BOT = "portal_test_bot"
PRACTICE = "Harbour Family Practice"


def settings_for(server: BotAPIServer, db_path: Path) -> Settings:
    """The bot's settings for talking to this emulator, with this database."""
    return load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=db_path,
        practice_name=PRACTICE,
    )


def database_for(db_path: Path) -> str | Path:
    """The test's database: PostgreSQL's when the test runs there (tests/conftest.py sets
    PORTAL_DATABASE_URL), else the SQLite file; for storage.open_database()."""
    return os.environ.get("PORTAL_DATABASE_URL") or db_path


async def make_practitioner(db: Database, telegram_id: int, name: str = "Dr Rao") -> None:
    async with db.transaction() as conn:
        await practitioners.upsert(conn, telegram_id, name)


async def make_invite(
    db: Database,
    name: str,
    dob: dt.date | None = dt.date(1985, 2, 3),
    email: str | None = None,
    invited_by: int | None = None,
) -> str:
    """An invite link, as `python -m bot invite` would print it."""
    new = await invitations.create_invite(
        db, invitations.InviteRequest(name, dob, email), ttl_days=14, invited_by=invited_by
    )
    return f"https://t.me/{BOT}?start={new.token}"


async def signed_in(
    db: Database,
    user: SimUser,
    name: str,
    dob: dt.date = dt.date(1985, 2, 3),
    email: str | None = None,
) -> None:
    """The whole sign-in journey for `user`: open the link, type the date of birth."""
    link = await make_invite(db, name, dob, email)
    await user.open_link(link)
    await user.send(dob.strftime("%d/%m/%Y").lstrip("0"))
    assert "You're now signed in" in user.last.text, user.transcript()


async def add_child_up_to_confirm(user: SimUser, name: str = "Mia Lee") -> None:
    """/addpatient for a child with a new account (Clinical, Edit), up to the summary whose
    Confirm creates it."""
    await user.send("/addpatient")
    await user.send(name)
    await user.tap("Child")
    await user.tap("Clinical")
    await user.tap("Edit")
    await user.tap("No, create an account for them")
    await user.send("1/2/2018")


async def stored_user_data(db: Database, telegram_id: int) -> dict[str, Any]:
    """A user's data (drafts and all) as stored: read per update, never kept in memory."""
    async with db.read() as conn:
        rows = await state.load(conn, state.USER_DATA)
    return next((json.loads(value) for key, value, _ in rows if key == str(telegram_id)), {})


async def outbox_settled(db: Database) -> None:
    """Until the sender has marked all it was to send (a moment after Telegram took each
    message): what a test counts after this is all there will be."""
    for _ in range(500):
        async with db.read() as conn:
            cur = await conn.execute("SELECT count(*) FROM outbox WHERE status = 'queued'")
            if (await cur.fetchone())[0] == 0:
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the outbox never settled")


async def until(
    server: BotAPIServer, seen: Callable[[], bool], what: str, wait_s: float = 5.0
) -> None:
    """Until `seen()` holds after a change in the emulator, or fail after wait_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    revision = server.revision
    while not seen():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"never saw {what} within {wait_s}s")
        revision = await server.wait_change(revision, remaining)
