"""A restart in the middle of a conversation resumes it; one abandoned across a restart
still times out with a message. The bot stops and starts on the same database file."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from bot.app import build_application, running
from bot.context import portal
from bot.settings import Settings, load_settings
from conversations import addpatient
from storage import Database, state
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import make_practitioner, signed_in

pytestmark = pytest.mark.both_backends


def _settings(server: BotAPIServer, db_path: Path, timeout: float = 600) -> Settings:
    return load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=db_path,
        conversation_timeout=timeout,
    )


async def _wait_for(user: SimUser, words: str, seconds: float = 5) -> None:
    for _ in range(int(seconds * 10)):
        if any(words in m.text for m in user.bot_messages):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(user.transcript())


async def test_addpatient_resumes_after_a_restart(server: BotAPIServer, db_path: Path) -> None:
    settings = _settings(server, db_path)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        db: Database = portal(app).db
        await signed_in(db, ann, "Ann Lee")
        await ann.send("/addpatient")
        await ann.send("Mia Lee")
        await ann.tap("Daughter")
        await ann.tap("Clinical")
    async with running(build_application(settings), poll_timeout=1):
        await ann.tap("Edit")  # the role step, on the prompt sent before the restart
        assert "own portal login" in ann.last.text
        await ann.tap("No, create an account for them")
        await ann.send("3/5/2018")
        assert "Name: Mia Lee" in ann.last.text and "Relationship: Daughter" in ann.last.text
    async with running(build_application(settings), poll_timeout=1):
        await ann.tap("✅ Confirm")
        assert "Mia Lee's account is ready" in ann.last.text


async def test_each_step_stores_its_draft_with_its_state(
    server: BotAPIServer, db_path: Path
) -> None:
    """What a kill right after a reply leaves behind: the step's conversation state and
    its answer, stored together. The first update after a start used to store its state
    at once and its answer only with the next update (PTB marks a user's data for storing
    after the last handler group, ours included), so a kill in between left the flow at
    the summary without the date of birth, and every Confirm failed."""
    settings = _settings(server, db_path)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await signed_in(portal(app).db, ann, "Ann Lee")
        await ann.send("/addpatient")
        await ann.send("Mia Lee")
        for label in ("Daughter", "Clinical", "Edit", "No, create an account for them"):
            await ann.tap(label)
    async with running(build_application(settings), poll_timeout=1) as app:
        await ann.send("3/5/2018")  # the first update after the start
        assert "Please check" in ann.last.text
        # Read before anything else could write: the next update, or the periodic flush.
        async with portal(app).db.read() as conn:
            rows = await state.load(conn, "user_data")
            steps = await state.load(conn, "conversation", "addpatient")
        assert len(rows) == 1 and '"dob": "2018-05-03"' in rows[0][1], rows
        assert [value for _, value, _ in steps] == [str(addpatient.CONFIRM)], steps


async def test_two_users_steps_side_by_side_each_store_their_draft_with_their_state(
    server: BotAPIServer, db_path: Path
) -> None:
    """Updates of different users now run concurrently (bot/processing.py): two parents'
    first answers after a start, sent at the same moment, are stored each with its step."""
    settings = _settings(server, db_path)
    parents = [server.user(700, "Ann"), server.user(701, "Bob")]
    async with running(build_application(settings), poll_timeout=1) as app:
        for parent, name in zip(parents, ("Ann Lee", "Bob Lee"), strict=True):
            await signed_in(portal(app).db, parent, name)
            await parent.send("/addpatient")
            await parent.send("Mia Lee")
            for label in ("Daughter", "Clinical", "Edit", "No, create an account for them"):
                await parent.tap(label)
    async with running(build_application(settings), poll_timeout=1) as app:
        await asyncio.gather(parents[0].send("3/5/2018"), parents[1].send("4/6/2019"))
        assert all("Please check" in parent.last.text for parent in parents)
        async with portal(app).db.read() as conn:
            rows = await state.load(conn, "user_data")
            steps = await state.load(conn, "conversation", "addpatient")
        drafts = {key: value for key, value, _ in rows}
        assert '"dob": "2018-05-03"' in drafts["700"] and '"dob": "2019-06-04"' in drafts["701"]
        assert [value for _, value, _ in steps] == [str(addpatient.CONFIRM)] * 2, steps


async def test_invite_resumes_after_a_restart(server: BotAPIServer, db_path: Path) -> None:
    settings = _settings(server, db_path)
    doctor = server.user(500, "Priya")
    async with running(build_application(settings), poll_timeout=1) as app:
        await make_practitioner(portal(app).db, 500)
        await doctor.send("/invite")
        await doctor.send("Bo Tran")
    async with running(build_application(settings), poll_timeout=1):
        await doctor.send("30/12/1990")
        assert "email" in doctor.last.text
        await doctor.tap("Skip", expect=2)
        assert doctor.last.kind == "photo"


async def test_a_flow_abandoned_across_a_restart_times_out(
    server: BotAPIServer, db_path: Path
) -> None:
    settings = _settings(server, db_path, timeout=1)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await signed_in(portal(app).db, ann, "Ann Lee", dt.date(1985, 2, 3))
        await ann.send("/addpatient")
        await ann.send("Mia Lee")
    await asyncio.sleep(1.5)  # the bot is down longer than the timeout
    async with running(build_application(settings), poll_timeout=1):
        await _wait_for(ann, "before I restarted, and it has timed out")
        await ann.send("Daughter")  # no longer an answer to anything
        assert "didn't understand" in ann.last.text


async def test_a_restored_flow_still_times_out_later(server: BotAPIServer, db_path: Path) -> None:
    """A flow resumed after a restart times out at its deadline like any other: once, with
    its own message (the bot no longer tells it a second time when the user writes)."""
    settings = _settings(server, db_path, timeout=2)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await signed_in(portal(app).db, ann, "Ann Lee", dt.date(1985, 2, 3))
        await ann.send("/addpatient")
    async with running(build_application(settings), poll_timeout=1):
        await _wait_for(ann, "You didn't finish adding a patient")
        await ann.send("Mia Lee")  # the flow is over: no longer an answer to anything
        assert "didn't understand" in ann.last.text
        assert sum("nothing was sent or created" in m.text for m in ann.bot_messages) == 1
