"""A half-finished flow times out with a message, at any step, and nothing is written."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.app import build_application, running
from bot.context import portal
from bot.settings import load_settings
from storage import Database
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import make_invite, make_practitioner, signed_in

TIMEOUT = 0.6


@pytest.fixture
async def quick_app(server: BotAPIServer, db_path: Path) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    settings = load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=db_path,
        conversation_timeout=TIMEOUT,
    )
    async with running(build_application(settings), poll_timeout=1) as app:
        yield app


async def _wait_for(user: SimUser, words: str) -> None:
    for _ in range(40):
        await asyncio.sleep(0.1)
        if any(words in m.text for m in user.bot_messages):
            return
    raise AssertionError(user.transcript())


ADD_STEPS: list[list[tuple[str, str]]] = [
    [],
    [("send", "Mia Lee")],
    [("send", "Mia Lee"), ("tap", "Child")],
    [("send", "Mia Lee"), ("tap", "Child"), ("tap", "Clinical")],
    [("send", "Mia Lee"), ("tap", "Child"), ("tap", "Clinical"), ("tap", "Edit")],
    [
        ("send", "Mia Lee"),
        ("tap", "Child"),
        ("tap", "Clinical"),
        ("tap", "Edit"),
        ("tap", "No, create an account for them"),
    ],
    [
        ("send", "Mia Lee"),
        ("tap", "Child"),
        ("tap", "Clinical"),
        ("tap", "Edit"),
        ("tap", "No, create an account for them"),
        ("send", "1/2/2018"),
    ],
]


@pytest.mark.parametrize("steps", ADD_STEPS, ids=lambda s: f"after-{len(s)}-steps")
async def test_adding_a_patient_times_out_at_any_step(
    server: BotAPIServer,
    quick_app: Application,
    steps: list[tuple[str, str]],  # type: ignore[type-arg]
) -> None:
    db: Database = portal(quick_app).db
    ann = server.user(700, "Ann")
    await signed_in(db, ann, "Ann Lee")
    await ann.send("/addpatient")
    for kind, value in steps:
        await (ann.send(value) if kind == "send" else ann.tap(value))
    await _wait_for(ann, "nothing was sent or created")
    await ann.tap_data("add:ok")
    assert ann.alerts[-1] == ("This button is no longer active.", True)
    async with db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM patients")
        assert (await cur.fetchone())[0] == 1


async def test_an_invite_and_a_sign_in_time_out(
    server: BotAPIServer, quick_app: Application
) -> None:  # type: ignore[type-arg]
    db: Database = portal(quick_app).db
    await make_practitioner(db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    await doctor.send("Bo Tran")
    await _wait_for(doctor, "timed out and was not created")
    link = await make_invite(db, "Ann Lee", dt.date(1985, 2, 3))
    ann = server.user(700, "Ann")
    await ann.open_link(link)
    await _wait_for(ann, "Sign-in timed out")
    await ann.send("3/2/1985")  # too late: no longer taken as an answer
    assert "didn't understand" in ann.last.text
    await ann.open_link(link)  # the link itself still works
    await ann.send("3/2/1985")
    assert "You're now signed in" in ann.last.text
