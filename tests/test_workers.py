"""Four workers on one PostgreSQL behind the webhook, as docs/deploy.md runs them: two
"machines" (`python -m bot run --webhook-url … --workers 2` each), the emulator
delivering updates as Telegram does and spreading them over both machines as a load
balancer would. A person's text and tap reach two workers at the same moment and run one
after the other; a worker is SIGKILLed in the middle of a decision, whose update Telegram
then sends again to another worker: it is decided once, told once, and nothing is lost;
/addpatient finishes on whichever worker takes each step."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg

from bot import invitations
from storage import logins, open_database
from tests.botapi import BotAPIServer, Hold, SimUser

ROOT = Path(__file__).resolve().parent.parent
SECRET = "workers-secret-for-tests"
PUBLIC_URL = "https://bot.example.org/telegram/hook"  # what Telegram is given
DOB = dt.date(1985, 2, 3)
WAIT_S = 60.0  # a bound on a wait for an event, never a pace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Machine:
    """`python -m bot run --webhook-url … --workers 2` on a port of its own."""

    def __init__(self, server: BotAPIServer, database_url: str, workers: int = 2) -> None:
        self.port = _free_port()
        self.hook = f"http://127.0.0.1:{self.port}/telegram/hook"
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        self.env |= {
            "PORTAL_BOT_TOKEN": server.token,
            "PORTAL_API_BASE_URL": server.base_url,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_WEBHOOK_SECRET": SECRET,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bot", "run", "--webhook-url", PUBLIC_URL),
            *("--listen", "127.0.0.1", "--port", str(self.port)),
            *("--workers", str(self.workers)),
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            await asyncio.wait_for(self._ready.wait(), WAIT_S)
        except TimeoutError:
            raise AssertionError("the workers did not start:\n" + "".join(self.log)) from None

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            self.log.append(line)
            if sum("taking updates at" in seen for seen in self.log) >= self.workers:
                self._ready.set()

    def worker_pids(self) -> set[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), WAIT_S)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader


@asynccontextmanager
async def machines(
    server: BotAPIServer, database_url: str, count: int = 2
) -> AsyncIterator[list[Machine]]:
    started = [Machine(server, database_url) for _ in range(count)]
    async with AsyncExitStack() as stack:
        for machine in started:
            stack.push_async_callback(machine.stop)
            await machine.start()
        # The load balancer in front: consecutive deliveries go to the other machine.
        server.webhook_targets = [machine.hook for machine in started]
        yield started
    for machine in started:
        assert "Traceback" not in "".join(machine.log), "".join(machine.log)


async def _patient_with_login(database_url: str, telegram_id: int, name: str) -> None:
    db = open_database(database_url)
    try:
        await db.migrate()
        email = f"{name.split()[0].lower()}@example.com"
        new = await invitations.create_invite(
            db, invitations.InviteRequest(name, DOB, email), ttl_days=14
        )
        async with db.transaction() as conn:
            await logins.create(conn, telegram_id, new.invite.patient_id, "en")
    finally:
        await db.close()


async def _waiting_for_turn(pg: asyncpg.Connection, user_id: int) -> None:
    """Until a worker waits for `user_id`'s turn (an advisory lock not granted): the
    event this test is about, read off PostgreSQL's lock table."""
    async with asyncio.timeout(WAIT_S):
        while not await pg.fetchval(  # noqa: ASYNC110 - the lock table has no event
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND objsubid = 1 AND objid = $1",
            user_id,
        ):
            await asyncio.sleep(0.01)


async def _worker_in_turn(pg: asyncpg.Connection, user_id: int) -> int:
    """The process id of the worker inside `user_id`'s turn (its connections are named
    after it, storage/postgres.py)."""
    name = await pg.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.objid = $1",
        user_id,
    )
    assert name and name.startswith("portal-bot "), name
    return int(name.split()[-1])


def _replies(user: SimUser, text: str) -> int:
    return sum(text in m.text for m in user.bot_messages)


async def test_four_workers_on_one_database(server: BotAPIServer, postgres: object) -> None:
    database_url = postgres.fresh()  # type: ignore[attr-defined]
    ann_id, bob_id = 8101, 8102
    await _patient_with_login(database_url, ann_id, "Ann Lee")
    await _patient_with_login(database_url, bob_id, "Bob Lee")
    ann, bob = server.user(ann_id, "Ann"), server.user(bob_id, "Bob")
    ann.started = bob.started = True
    pg = await asyncpg.connect(database_url)
    try:
        async with machines(server, database_url) as running:
            assert [call for call, _ in server.calls].count("setWebhook") == 1

            # 1. A text and a tap of one person, at two workers at once: the tap waits
            #    for the text's turn, whichever worker each reached.
            await ann.send("/start")
            first = ann.last
            assert first.labels, ann.transcript()
            hold = Hold("sendMessage", chat_id=ann_id)
            server.holds.append(hold)
            text = asyncio.create_task(ann.send("/help", timeout=WAIT_S))
            await asyncio.wait_for(hold.reached.wait(), WAIT_S)  # the text is mid-update
            tap = asyncio.create_task(ann.tap(first.labels[0], message=first, timeout=WAIT_S))
            await _waiting_for_turn(pg, ann_id)  # the tap's worker waits for Ann's turn
            calls_before = len(server.calls)
            hold.opened.set()
            await text
            await tap
            after = [call for call, _ in server.calls[calls_before - 1 :]]
            assert after[0] == "sendMessage" and "answerCallbackQuery" in after[1:], after
            urls = {url for _, url, _ in server.webhook_deliveries[-2:]}
            assert len(urls) == 2, server.webhook_deliveries[-2:]  # two machines

            # 2. /addpatient, each step at the next machine.
            await ann.send("/cancel")
            await ann.send("/addpatient")
            await ann.send("Bob Lee")
            await ann.tap("Partner")
            await ann.tap("Clinical")
            await ann.tap("View")
            await ann.tap("Yes, they have a login")
            await ann.send("bob@example.com")
            await ann.tap("✅ Confirm")
            await server.wait_idle(timeout=WAIT_S)
            card = bob.last
            assert "Ann Lee asks to access your patient portal" in card.text, bob.transcript()
            used = {url for _, url, _ in server.webhook_deliveries}
            assert used == {m.hook for m in running}

            # 3. Bob approves; the worker handling it is SIGKILLed in the middle: the
            #    decision is stored, and it is showing Bob the outcome. Telegram sends the
            #    tap again, to a worker that is alive.
            hold = Hold("editMessageText", chat_id=bob_id)
            server.holds.append(hold)
            approve = asyncio.create_task(bob.tap("✅ Approve", message=card, timeout=WAIT_S))
            await asyncio.wait_for(hold.reached.wait(), WAIT_S)
            victim = await _worker_in_turn(pg, bob_id)
            assert any(victim in m.worker_pids() for m in running)
            os.kill(victim, signal.SIGKILL)
            await approve  # answered by another worker
            async with asyncio.timeout(WAIT_S):  # the notice the dead worker owed Ann
                while not _replies(ann, "Bob Lee approved your request"):
                    await server.wait_change(server.revision)
            await server.wait_idle(timeout=WAIT_S)
            assert _replies(ann, "Bob Lee approved your request") == 1, ann.transcript()
            assert "✅ Approved: Clinical, View." in card.text, bob.transcript()
            decided = await pg.fetchval(
                "SELECT count(*) FROM audit_events WHERE action = 'grant.approved'"
                " AND outcome = 'ok'"
            )
            assert decided == 1
            assert await pg.fetchval("SELECT count(*) FROM grants WHERE status = 'active'") == 1
            # Nothing lost: every update was in the end answered 200.
            assert not server.delivering
            answered = {u for u, _, status in server.webhook_deliveries if status == 200}
            assert answered == {u for u, _, _ in server.webhook_deliveries}
            # The dead worker died showing the outcome, before it answered Bob's tap (a tap's
            # answer goes once its reply has gone): the live one's answer is the only one.
            refused = [e for e in server.errors if e["method"] == "answerCallbackQuery"]
            assert not refused, refused
    finally:
        await pg.close()
