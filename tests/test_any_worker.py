"""Any worker takes any update (issue #19): a user's conversation state is read from the
database for each update, not kept by the process that handled the one before. Two
Applications on one database stand in for two workers; the test passes the updates
to them in turn, as a load balancer would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bot.app import ALLOWED_UPDATES, build_application
from bot.context import PortalApp, portal
from bot.settings import load_settings
from bot.userstate import SEEN_KEY
from conversations.timeouts import sweep_timed_out_flows
from storage import Database
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import signed_in, stored_user_data


@contextlib.asynccontextmanager
async def two_workers(
    server: BotAPIServer, db_path: Path, timeout_s: float = 600
) -> AsyncIterator[list[PortalApp]]:
    settings = load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=db_path,
        conversation_timeout=timeout_s,
    )
    workers = [build_application(settings, polling=False) for _ in range(2)]
    for app in workers:
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()

    async def balance() -> None:
        offset, turn = 0, 0
        while True:
            updates = await workers[0].bot.get_updates(
                offset=offset, timeout=1, allowed_updates=ALLOWED_UPDATES
            )
            for update in updates:
                offset = update.update_id + 1
                await workers[turn % 2].process_update(update)
                turn += 1

    balancer = asyncio.create_task(balance())
    try:
        yield workers
    finally:
        balancer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await balancer
        for app in workers:
            await app.stop()
            await app.shutdown()
            assert app.post_shutdown is not None
            await app.post_shutdown(app)


async def _sweeps_done(app: PortalApp, count: int) -> None:
    """Until this worker's timeout job has run `count` more times: APScheduler moves a job's
    next run on as each run starts, so count + 1 moves mean `count` runs ended."""
    assert app.job_queue is not None
    (job,) = [j for j in app.job_queue.jobs() if j.callback is sweep_timed_out_flows]
    moves, last = 0, job.next_t
    async with asyncio.timeout(10):
        while moves <= count:
            await asyncio.sleep(0.02)
            if job.next_t != last:
                moves, last = moves + 1, job.next_t


async def _wait_for(user: SimUser, words: str, seconds: float = 5) -> None:
    for _ in range(int(seconds * 10)):
        if any(words in m.text for m in user.bot_messages):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(user.transcript())


async def test_each_step_of_a_flow_on_another_worker(server: BotAPIServer, db_path: Path) -> None:
    ann = server.user(700, "Ann")
    async with two_workers(server, db_path) as workers:
        await signed_in(portal(workers[0]).db, ann, "Ann Lee")
        await ann.send("/addpatient")  # worker 1
        await ann.send("Mia Lee")  # worker 2
        assert "What is Mia Lee to you?" in ann.last.text
        for label in ("Daughter", "Clinical", "Edit", "No, create an account for them"):
            await ann.tap(label)
        await ann.send("3/5/2018")
        assert "Name: Mia Lee" in ann.last.text and "Relationship: Daughter" in ann.last.text
        await ann.tap("✏️ Change")
        await ann.tap("Name")
        await ann.send("Mia Rose Lee")
        assert "Name: Mia Rose Lee" in ann.last.text
        await ann.tap("✅ Confirm")
        assert "Mia Rose Lee's account is ready" in ann.last.text
        assert not server.errors, server.errors


async def test_an_abandoned_flow_is_told_once_by_one_worker(
    server: BotAPIServer, db_path: Path
) -> None:
    """Both workers look for conversations past their deadline: one claims it."""
    ann = server.user(700, "Ann")
    async with two_workers(server, db_path, timeout_s=0.6) as workers:
        await signed_in(portal(workers[0]).db, ann, "Ann Lee")
        await ann.send("/addpatient")
        await ann.send("Mia Lee")
        await _wait_for(ann, "You didn't finish adding a patient")
        for app in workers:  # two more whole sweeps on each worker
            await _sweeps_done(app, 2)
        await server.wait_idle()
        told = [m for m in ann.bot_messages if "You didn't finish" in m.text]
        assert len(told) == 1, ann.transcript()
        await ann.send("Daughter")
        assert "didn't understand" in ann.last.text


async def test_an_update_that_changes_nothing_writes_nothing(
    server: BotAPIServer, bot_db: Database
) -> None:
    """The user's state is written only when an update changed it (issue #23)."""
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/addpatient")
    stored = await stored_user_data(bot_db, 700)
    assert stored[SEEN_KEY]  # a step writes the update's id with it
    await ann.send("/help")  # mid-flow: the reminder; a step, which restarts the timeout
    after_step = await stored_user_data(bot_db, 700)
    assert len(after_step[SEEN_KEY]) == len(stored[SEEN_KEY]) + 1
    await ann.send("/cancel")
    ended = await stored_user_data(bot_db, 700)
    await ann.send("/appointments")  # outside a flow: nothing of the user's state changes
    assert "appointments" in ann.last.text.lower()
    assert await stored_user_data(bot_db, 700) == ended
