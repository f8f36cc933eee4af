"""Section 3 (start-up): from launching `python -m bot run` to its first getUpdates call."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.loopback import BenchServer

ROOT = Path(__file__).resolve().parent.parent


async def time_to_first_poll(db: Path, runs: int) -> list[float]:
    """Seconds from process launch to the emulator seeing getUpdates, once per run."""
    took = []
    for _ in range(runs):
        server = BenchServer(bot_username="portal_bench_bot")
        await server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
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
                took.append(server.first_poll_at - started)
            except TimeoutError:
                err.seek(0)
                raise RuntimeError(
                    "python -m bot run never polled: " + err.read().decode(errors="replace")
                ) from None
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 20)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
                await server.stop()
    return took
