"""Section 1: per-update cost of the real bot, and of a bare echo bot, through real HTTP.

Each bot runs in a process of its own (benchmarks/botproc.py) against a fresh loopback
emulator in this process, so the bot's CPU time and memory are its own and both cores
work: one serves the bot, the other the emulator and the simulated users.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.botproc import ECHO_SAME_TRANSPORT
from benchmarks.loopback import (
    BenchServer,
    Driver,
    RunResult,
    Step,
    memory_kib,
    stop_bot,
    tree_cpu_seconds,
)
from benchmarks.loopback import tap as tap_
from benchmarks.loopback import text as text_
from benchmarks.seed import REQUESTER_BASE, LoadUser, fresh, seed_load
from bot.access import Area
from bot.callbacks import (
    AnswerOwnLogin,
    ApproveRequest,
    AskForLevel,
    AskForRole,
    ChooseRelationship,
    ConfirmAdding,
    SwitchTo,
    TurnPage,
)
from bot.outbox import PER_SECOND
from playground.emulator import SimUser
from storage import open_database
from storage.db import fetch_one
from storage.vocabulary import Level, Relationship, Role

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3  # rounds of the mix per user: saturation, latency at --rate, at half capacity


@dataclass
class LoadOptions:
    users: int = 200
    rate: float = 150.0  # updates/s offered in the paced phase, over all users
    profile_dir: Path | None = None
    rtt: float = 0.0  # seconds the emulator holds each Bot API call, as Telegram's round trip
    # What starts a bot process (for trying a variant of the bot); the kind and the
    # emulator's address are appended.
    bot_command: tuple[str, ...] = (sys.executable, "-m", "benchmarks.botproc")
    # A webhook bot (benchmarks/webhookproc.py) never polls: it is ready once its stderr
    # has this line `ready_count` times (once per worker).
    ready_marker: str | None = None
    ready_count: int = 1
    # Other CPU to count over the saturation phase (the PostgreSQL server's), in seconds.
    side_cpu: Callable[[], float] | None = None


@dataclass
class BotRun:
    kind: str
    saturation: RunResult
    paced: RunResult  # at LoadOptions.rate
    light: RunResult  # at `light_rate`: half the portal bot's throughput
    light_rate: float
    cpu_saturation: float  # seconds of the bot's CPU (its process tree) during saturation
    calls_saturation: int  # Bot API calls (getUpdates aside) during the saturation phase
    bytes_saturation: int  # and the bytes of their request bodies
    memory: dict[str, int]  # VmRSS, VmHWM in KiB after the load
    emulator_errors: int
    stderr: str
    work: dict[str, int] = field(default_factory=dict)
    side_cpu_saturation: float = 0.0  # LoadOptions.side_cpu over the saturation phase


def cycle(user: LoadUser, k: int) -> list[Step]:
    """One round of the realistic mix (19 updates): own appointments with ◀ ▶, /switch to a
    child and their appointments (upcoming ▶, then past), /switch back, approve one waiting
    request, and /addpatient a new dependent from the first question to Confirm."""
    me, child = user.patient_id, user.children[k % len(user.children)]
    steps = [
        text_("/appointments"),
        tap_(TurnPage(Area.APPOINTMENTS, me, 1).encode()),
        tap_(TurnPage(Area.APPOINTMENTS, me, 0).encode()),
        text_("/switch"),
        tap_(SwitchTo(child).encode()),
        text_("/appointments"),
        tap_(TurnPage(Area.APPOINTMENTS, child, 1).encode()),
        tap_(TurnPage(Area.APPOINTMENTS, child, 0, past=True).encode()),
        text_("/switch"),
        tap_(SwitchTo(me).encode()),
    ]
    if k < len(user.pending):
        steps.append(tap_(ApproveRequest(user.pending[k]).encode()))
    steps += [
        text_("/addpatient"),
        text_("Ruby Lee"),
        tap_(ChooseRelationship(Relationship.DAUGHTER).encode()),
        tap_(AskForLevel(Level.CLINICAL).encode()),
        tap_(AskForRole(Role.VIEW).encode()),
        tap_(AnswerOwnLogin(False).encode()),
        text_("3/5/2018"),
        tap_(ConfirmAdding().encode()),
    ]
    return steps


def child_env() -> dict[str, str]:
    # The developer's own PORTAL_* settings must not change what is measured.
    return {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}


async def run_bot(
    kind: str,
    people: list[LoadUser],
    db: Path | str | None,
    o: LoadOptions,
    light_rate: float | None = None,
    *,
    saturation_only: bool = False,
    light_phase: bool = True,
) -> BotRun:
    """Warm up, then three phases with one round of the mix each: saturation, latency at
    `o.rate`, latency at `light_rate` (default: half of this bot's saturation throughput);
    or the first alone (the paced ones then have no updates); `light_phase=False` leaves out the
    third. `db`: a SQLite path or a postgresql:// URL."""
    server = BenchServer(bot_username="portal_bench_bot", rtt=o.rtt)
    await server.start()
    sims = []
    for u in people:
        sim = server.user(u.telegram_id, f"User{u.telegram_id}", "en")
        sim.started = True  # they signed in earlier, so the bot may write to them
        sims.append(sim)
    for j in range(max((len(u.pending) for u in people), default=0)):
        server.user(REQUESTER_BASE + j, f"Requester{j}", "en").started = True
    command = [*o.bot_command, kind]
    command += ["--token", server.token, "--base-url", server.base_url]
    if db is not None:
        command += ["--db", str(db)]
    if o.profile_dir is not None:
        command += ["--profile", str(o.profile_dir / f"{kind}.prof")]
    with tempfile.TemporaryFile() as err:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.DEVNULL, stderr=err
        )
        try:
            try:
                await asyncio.wait_for(_ready(server, err, o), 60)
            except TimeoutError:
                err.seek(0)
                raise RuntimeError(
                    f"the {kind} bot never got ready: " + err.read().decode(errors="replace")
                ) from None
            driver = Driver(server)
            cards = len(people[0].pending) if kind == "portal" else 0
            # Not measured: each parent opens the bot (/start), which warms every cache; the
            # requests waiting for them reach them as cards with Approve buttons (the
            # outbox sends them at start-up, or on the parent's first update).
            warm = await driver.run([(s, [text_("/start", expect=1)]) for s in sims])
            if warm.lost:
                raise RuntimeError(f"{kind}: {warm.lost} of {len(sims)} /start got no reply")
            if not await _cards_arrived(server, sims, cards):
                raise RuntimeError(f"{kind}: the waiting requests never reached every parent")
            side0 = o.side_cpu() if o.side_cpu else 0.0
            cpu0, calls0, bytes0 = (
                tree_cpu_seconds(proc.pid),
                server.api_calls,
                server.request_bytes,
            )
            saturation = await driver.run(_scripts(sims, people, 0))
            cpu1, calls1, bytes1 = (
                tree_cpu_seconds(proc.pid),
                server.api_calls,
                server.request_bytes,
            )
            side1 = o.side_cpu() if o.side_cpu else 0.0
            light_rate = light_rate or saturation.rate / 2
            if saturation_only:
                paced, light = RunResult(), RunResult()
            else:
                paced = await driver.run(_scripts(sims, people, 1), rate=o.rate, seed=2)
                light = RunResult()
                if light_phase:
                    light = await driver.run(_scripts(sims, people, 2), rate=light_rate, seed=3)
            memory = memory_kib(proc.pid)
        finally:
            await stop_bot(proc)
            await server.stop()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    run = BotRun(
        kind,
        saturation,
        paced,
        light,
        light_rate,
        cpu1 - cpu0,
        calls1 - calls0,
        bytes1 - bytes0,
        memory,
        len(server.errors),
        stderr,
        side_cpu_saturation=side1 - side0,
    )
    if db is not None:
        run.work = await _work_done(db, people)
    return run


async def _ready(server: BenchServer, err: IO[bytes], o: LoadOptions) -> None:
    """Until the bot polls, or (a webhook bot) its stderr has `o.ready_marker` as often
    as it has workers. The log has no event to wait on: it is read again every 50 ms."""
    if o.ready_marker is None:
        await server.polled.wait()
        return
    marker = o.ready_marker.encode()
    while True:
        err.seek(0)
        if err.read().count(marker) >= o.ready_count:
            return
        await asyncio.sleep(0.05)


def _scripts(
    sims: Sequence[SimUser], people: list[LoadUser], round_number: int
) -> list[tuple[SimUser, list[Step]]]:
    return [(sim, cycle(u, round_number)) for sim, u in zip(sims, people, strict=True)]


async def _work_done(target: Path | str, people: list[LoadUser]) -> dict[str, int]:
    """What the bot actually wrote: a bot that answers fast but does nothing is no faster."""
    db = open_database(target)  # SQLite or PostgreSQL, through the app's own layer
    await db.connect()
    try:
        async with db.read() as conn:
            parents = [u.patient_id for u in people]
            marks = ",".join("?" * len(parents))
            held = await fetch_one(
                conn, f"SELECT count(*) FROM patients WHERE holder_id IN ({marks})", parents
            )
            active = await fetch_one(
                conn,
                f"SELECT count(*) FROM grants WHERE subject_id IN ({marks}) AND status = 'active'",
                parents,
            )
            assert held is not None and active is not None
            dependents, approved = held[0], active[0]
    finally:
        await db.close()
    seeded = sum(len(u.children) for u in people)
    return {"dependents_created": dependents - seeded, "requests_approved": approved}


@dataclass
class Measured:
    portal: BotRun
    echo: BotRun  # PTB's defaults: the floor the targets are set against
    echo_same_transport: BotRun  # saturation only: what the handlers cost beyond the transport
    # The same right before the portal bot's run (echo_same_transport comes right after
    # it): a machine shared with other work drifts, and the ratio takes both.
    echo_same_before: BotRun | None = None


async def measure(workdir: Path, o: LoadOptions) -> Measured:
    db = fresh(workdir / "load.db")
    people, _ = await seed_load(db, o.users, ROUNDS)
    before = await run_bot(ECHO_SAME_TRANSPORT, people, None, o, saturation_only=True)
    portal = await run_bot("portal", people, db, o)
    same = await run_bot(ECHO_SAME_TRANSPORT, people, None, o, saturation_only=True)
    # The echo bot gets the same offered loads, so latencies compare at equal load.
    echo = await run_bot("echo", people, None, o, light_rate=portal.light_rate)
    return Measured(portal, echo, same, before)


async def _cards_arrived(server: BenchServer, sims: Sequence[SimUser], cards: int) -> bool:
    """Every parent has their `cards` request cards (False when they do not come in time)."""

    def has_all(user: SimUser) -> bool:
        found = sum(
            any(ApproveRequest.parse(b.callback_data) is not None for b in row)
            for m in user.bot_messages
            for row in m.buttons[:1]
        )
        return found >= cards

    loop = asyncio.get_running_loop()
    # The background sender keeps Telegram's pace (bot/outbox.py Pace: 30 a second), so
    # the whole backlog takes its time: a minute beyond that.
    deadline = loop.time() + 60 + cards * len(sims) / PER_SECOND
    revision = server.revision
    while not all(has_all(s) for s in sims):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        revision = await server.wait_change(revision, remaining)
    return True
