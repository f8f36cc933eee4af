"""`python -m benchmarks.botproc portal|echo …`: one bot in its own process, polling the
benchmark's emulator until SIGTERM. A process of its own, so its CPU time and memory are
the bot's alone (the emulator and the simulated users run in the parent)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import build_application, running
from bot.settings import load_settings

ECHO_SAME_TRANSPORT = "echo-portal-transport"


def _build(
    kind: str, token: str, base_url: str, db: Path | None, options: argparse.Namespace
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The portal bot or the echo bot: running() serves either the same way."""
    if kind == "portal":
        extra = {"timezone": options.timezone} if options.timezone else {}
        settings = load_settings(
            bot_token=token,
            api_base_url=base_url,
            db_path=db,
            practice_name="Benchmark Practice",
            **extra,
        )
        # Without PTB's AIORateLimiter unless asked for: it throttles to Telegram's ~30
        # messages/s, a limit of Telegram's servers, not a cost of this bot (the report
        # says so). Section 6 turns it on to see the outbox keep that pace.
        return build_application(settings, rate_limit=options.rate_limit)
    from benchmarks.echo import build_echo

    return build_echo(token, base_url, portal_transport=kind == ECHO_SAME_TRANSPORT)


async def _serve(
    kind: str, token: str, base_url: str, db: Path | None, options: argparse.Namespace
) -> None:
    app = _build(kind, token, base_url, db, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with running(app, poll_timeout=10):
        print("ready", flush=True)
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.botproc")
    parser.add_argument("kind", choices=["portal", "echo", ECHO_SAME_TRANSPORT])
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--profile", type=Path, help="write cProfile stats here on exit")
    parser.add_argument(
        "--rate-limit", action="store_true", help="keep PTB's AIORateLimiter, as `bot run` does"
    )
    parser.add_argument("--timezone", help="the practice's time zone (PORTAL_TIMEZONE)")
    args = parser.parse_args()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            asyncio.run(_serve(args.kind, args.token, args.base_url, args.db, args))
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
        return 0
    asyncio.run(_serve(args.kind, args.token, args.base_url, args.db, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
