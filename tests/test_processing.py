"""Updates of different users run side by side; one user's run one at a time, in order."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import random
from asyncio import Task
from collections.abc import Coroutine
from typing import Any

from telegram import Chat, Message, Update, User
from telegram.ext import Application

from bot.app import build_application, running
from bot.context import portal
from bot.processing import OneAtATimePerUser


def _update(update_id: int, user_id: int) -> Update:
    chat = Chat(user_id, Chat.PRIVATE)
    sender = User(user_id, f"User {user_id}", is_bot=False)
    return Update(update_id, message=Message(update_id, dt.datetime.now(dt.UTC), chat, sender))


async def test_another_user_is_served_while_one_waits_and_each_keeps_their_order() -> None:
    processor = OneAtATimePerUser()
    events: list[str] = []
    telegram_answers = asyncio.Event()

    async def handle(name: str, wait: asyncio.Event | None = None) -> None:
        events.append(f"{name} starts")
        if wait is not None:
            await wait.wait()  # e.g. a Bot API round trip
        events.append(f"{name} ends")

    def arrive(update_id: int, user_id: int, work: Coroutine[Any, Any, None]) -> Task[None]:
        return asyncio.create_task(processor.process_update(_update(update_id, user_id), work))

    # In the order Telegram sent them: Ann twice, then Bob.
    tasks = [
        arrive(1, 10, handle("ann 1", telegram_answers)),
        arrive(2, 10, handle("ann 2")),
        arrive(3, 20, handle("bob")),
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    assert events == ["ann 1 starts", "bob starts", "bob ends"]
    telegram_answers.set()
    await asyncio.gather(*tasks)
    assert events[3:] == ["ann 1 ends", "ann 2 starts", "ann 2 ends"]


async def test_many_updates_of_one_user_run_in_the_order_they_came() -> None:
    processor = OneAtATimePerUser()
    rng = random.Random(7)
    done: list[int] = []
    running: set[int] = set()

    async def handle(user_id: int, n: int) -> None:
        assert user_id not in running, "two updates of one user at once"
        running.add(user_id)
        await asyncio.sleep(rng.random() / 1000)
        done.append(n)
        running.discard(user_id)

    updates = [(n, 10 + n % 3) for n in range(60)]  # three users, interleaved
    await asyncio.gather(
        *(processor.process_update(_update(n, user), handle(user, n)) for n, user in updates)
    )
    for user in (10, 11, 12):
        theirs = [n for n in done if 10 + n % 3 == user]
        assert theirs == sorted(theirs) and len(theirs) == 20
    assert processor.turns.idle  # nothing kept for users with nothing in flight


async def test_an_update_cancelled_while_waiting_for_its_turn_never_runs() -> None:
    processor = OneAtATimePerUser()
    ran: list[str] = []
    release = asyncio.Event()

    async def handle(name: str, wait: asyncio.Event | None = None) -> None:
        ran.append(name)
        if wait is not None:
            await wait.wait()

    first = asyncio.create_task(processor.process_update(_update(1, 10), handle("first", release)))
    second = asyncio.create_task(processor.process_update(_update(2, 10), handle("second")))
    await asyncio.sleep(0)
    second.cancel()
    release.set()
    await first
    assert second.cancelled()
    assert ran == ["first"] and processor.turns.idle


async def test_start_up_objects_are_left_out_of_full_collections_while_the_bot_runs(
    app: Application,  # type: ignore[type-arg]
) -> None:
    """A full collection stops every user's update while it walks every object there is;
    what start-up built (modules, handlers, PTB's objects) is frozen out of it, and given
    back when the Application stops, for a process that goes on."""
    assert gc.get_freeze_count() > 10_000
    async with running(build_application(portal(app).settings), poll_timeout=1):
        pass
    assert gc.get_freeze_count() == 0
