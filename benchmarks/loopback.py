"""A load driver on top of the loopback Bot API emulator.

SimUser.send/tap wait for a quiet period after each update, which is right for tests and
useless for load: here many users each keep one update in flight. The emulator itself is
used unchanged; BenchServer only observes it (a timestamp when an update is enqueued and
when the bot's reply reaches a chat, and the first getUpdates call).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.emulator import BotAPIServer, Msg, SimUser

if TYPE_CHECKING:  # the emulator's hooks overridden below take its chats
    from playground.emulator.chats import Chat

REPLY_TIMEOUT = 30.0  # seconds; an update without a reply by then counts as lost


class BenchServer(BotAPIServer):
    """The emulator plus timestamps. Behaviour towards the bot is exactly the emulator's."""

    def __init__(self, *, rtt: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Seconds each Bot API call (getUpdates aside) waits before it is answered, as a
        # round trip to Telegram's servers would: 0 on loopback.
        self.rtt = rtt
        self.first_poll_at: float | None = None
        self.polled = asyncio.Event()
        self.enqueued_at = 0.0
        self.last_update_id = 0
        self._watch: dict[int, _InFlight] = {}
        # By webhook: update id -> answered 200 (the bot handled it whole).
        self._handled: dict[int, asyncio.Future[None]] = {}
        # Every Bot API call but getUpdates, and the bytes of their request bodies.
        self.api_calls = 0
        self.request_bytes = 0

    def _enqueue(self, chat: Chat | None, payload: dict[str, Any]) -> int:
        update_id = super()._enqueue(chat, payload)
        self.enqueued_at = time.perf_counter()  # the update is now available to getUpdates
        self.last_update_id = update_id
        return update_id

    async def _deliver(self, update: dict[str, Any], key: int) -> None:
        await super()._deliver(update, key)
        waiter = self._handled.get(update["update_id"])
        if waiter is not None and not waiter.done() and self.delivered(update["update_id"]):
            waiter.set_result(None)

    def _record(self, chat: Chat, msg: Msg | None) -> None:
        super()._record(chat, msg)
        # Only what the user reads counts as the reply: a message sent or edited in their
        # chat. answerCallbackQuery (msg None) merely stops the button's spinner.
        if msg is None or msg.deleted:
            return
        flight = self._watch.get(chat.id)
        if flight is not None:
            flight.seen(time.perf_counter())

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"].lower() != "getupdates":
            self.api_calls += 1
            self.request_bytes += request.content_length or 0
            if self.rtt:
                await asyncio.sleep(self.rtt)
        return await super()._handle(request)

    async def _get_updates(self, p: dict[str, Any], request: Any) -> list[Any]:
        if self.first_poll_at is None:
            self.first_poll_at = time.perf_counter()
            self.polled.set()
        return await super()._get_updates(p, request)


@dataclass
class _InFlight:
    expect: int
    done: asyncio.Future[None]
    enqueued: float = 0.0
    first: float | None = None
    count: int = 0

    def seen(self, at: float) -> None:
        self.count += 1
        if self.first is None:
            self.first = at
        if self.count >= self.expect and not self.done.done():
            self.done.set_result(None)


@dataclass(frozen=True)
class Step:
    """One thing a user does: type `value` ("text") or tap the button whose callback data
    is `value` ("tap"); `expect` is how many messages the reply has (sent or edited)."""

    kind: str
    value: str
    expect: int = 1


def text(value: str, expect: int = 1) -> Step:
    return Step("text", value, expect)


def tap(data: str, expect: int = 1) -> Step:
    return Step("tap", data, expect)


@dataclass
class RunResult:
    latencies: list[float] = field(default_factory=list)  # seconds, enqueue -> first reply
    lost: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def wall(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall > 0 else float("nan")


class Driver:
    """Runs users' scripts against a BenchServer, one update in flight per user."""

    def __init__(self, server: BenchServer, timeout: float = REPLY_TIMEOUT) -> None:
        self.server = server
        self.timeout = timeout

    def _target(self, user: SimUser, data: str) -> Msg:
        """The newest message with a button carrying `data`, as a person would tap it;
        a bot that never offered that button (the echo bot) gets it on its last message."""
        for msg in reversed(user._all):
            if msg.from_bot and not msg.deleted:
                for row in msg.buttons:
                    if any(b.callback_data == data for b in row):
                        return msg
        return user.last

    async def step(self, user: SimUser, step: Step) -> float | None:
        """Do one step; the latency to the first reply in seconds, None if none came.

        By webhook, the step also ends only once the bot answered the update's POST (it
        handled it whole). A text and a tap travel in two of Telegram's queues, and a reply
        can come in more than one message (a new prompt, then the old one's buttons taken
        away): a user who typed on at the first message could overtake their own tap still
        queued, which no person reading the replies does. Polling has one ordered stream."""
        server = self.server
        if user.id in server._watch:
            raise RuntimeError(f"user {user.id} already has an update in flight")
        loop = asyncio.get_running_loop()
        flight = _InFlight(step.expect, loop.create_future())
        server._watch[user.id] = flight
        handled: asyncio.Future[None] | None = None
        update_id = -1
        try:
            if step.kind == "text":
                user.type_text(step.value)
            else:
                user.press(self._target(user, step.value), step.value)
            flight.enqueued = server.enqueued_at
            if server.webhook_url:
                update_id = server.last_update_id
                handled = server._handled[update_id] = loop.create_future()
            deadline = loop.time() + self.timeout
            await asyncio.wait_for(flight.done, self.timeout)
            if handled is not None:
                await asyncio.wait_for(handled, max(deadline - loop.time(), 0))
        except TimeoutError:
            return None
        finally:
            del server._watch[user.id]
            server._handled.pop(update_id, None)
        assert flight.first is not None
        return flight.first - flight.enqueued

    async def run(
        self,
        scripts: Sequence[tuple[SimUser, Sequence[Step]]],
        *,
        rate: float | None = None,
        seed: int = 1,
    ) -> RunResult:
        """All users at once, each with one update in flight at most.

        rate None: every user acts as soon as the previous reply arrived (a closed loop,
        which saturates the bot: throughput). rate R: arrivals form one Poisson process of
        R updates/s, dealt to the users in turn (so each user pauses about users/R seconds
        between steps); a user still waiting for a reply acts when it comes. Latency is
        then measured at a known offered load rather than in a queue of the driver's making.
        """
        result = RunResult()
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        users = len(scripts)
        longest = max((len(steps) for _, steps in scripts), default=0)
        arrivals: list[float] = []
        if rate is not None:
            t = 0.0
            for _ in range(users * longest):
                t += rng.expovariate(rate)
                arrivals.append(t)

        async def one(index: int, user: SimUser, steps: Sequence[Step], start: float) -> None:
            for n, s in enumerate(steps):
                if arrivals:
                    delay = start + arrivals[n * users + index] - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                latency = await self.step(user, s)
                if latency is None:
                    result.lost += 1
                else:
                    result.latencies.append(latency)
                result.finished = time.perf_counter()

        # This process stands in for Telegram: a pause of its own would be timed as the
        # bot's. Its full collections walk every message the emulator has kept (50-160 ms
        # by the end of a run), so the collector waits for the end of the phase.
        gc.collect()
        gc.disable()
        try:
            result.started = time.perf_counter()
            start = loop.time()
            await asyncio.gather(
                *(one(i, user, steps, start) for i, (user, steps) in enumerate(scripts))
            )
        finally:
            gc.enable()
        return result


# --- The bot's process ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # Fields after "(comm)": state is fields[0]; utime and stime are the 14th and 15th
    # fields of the whole line, i.e. fields[11] and fields[12] here.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of every descendant, living or exited (an exited child's
    time moves to its waiting parent's cutime/cstime, so a difference of two readings
    counts it once): a gunicorn master and its workers, a PostgreSQL postmaster and its
    backends."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # gone between the parent's listing and this reading
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK") + sum(tree_cpu_seconds(int(c)) for c in children)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0])
    return found


async def stop_bot(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, as a service manager stops the bot; killed if it has not exited in 20 s."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
