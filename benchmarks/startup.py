"""Section 3 (start-up): from launching `python -m bot run` to its first getUpdates call.

A first launch writes the bot's modules' bytecode (`__pycache__`, git-ignored) if it is not
there yet, as a deployment's first start does; the launches after it read it back, as every
restart does. PYTHONDONTWRITEBYTECODE (set on some machines) is lifted for the child only:
with it every launch compiles ~40 modules again (~0.13 s here), which no restart costs where
bytecode is kept (a non-editable `pip install` compiles at install time)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loopback import BenchServer, stop_bot

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Launches:
    first: float  # may have compiled the bot's modules on the way
    later: list[float]


async def time_to_first_poll(db: Path, runs: int) -> Launches:
    """Seconds from process launch to the emulator seeing getUpdates: one first launch,
    then `runs` more."""
    took = [await _launch(db) for _ in range(runs + 1)]
    return Launches(took[0], took[1:])


async def _launch(db: Path) -> float:
    server = BenchServer(bot_username="portal_bench_bot")
    await server.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PORTAL_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "PORTAL_BOT_TOKEN": server.token,
        "PORTAL_API_BASE_URL": server.base_url,
        "PORTAL_DB_PATH": str(db),
    }
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )
        try:
            await asyncio.wait_for(server.polled.wait(), 60)
            assert server.first_poll_at is not None
            return server.first_poll_at - started
        except TimeoutError:
            err.seek(0)
            raise RuntimeError(
                "python -m bot run never polled: " + err.read().decode(errors="replace")
            ) from None
        finally:
            await stop_bot(proc)
            await server.stop()
