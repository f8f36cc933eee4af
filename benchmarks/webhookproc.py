"""`python -m benchmarks.webhookproc --workers N --port P portal --token … --base-url … --db
DB`: the portal bot taking updates by webhook, in one process or N gunicorn workers, as
`python -m bot run --webhook-url … --workers N` serves them (bot/webhook.py's own
webhook_app, serve_one and serve_workers), with one difference: the Application is built
without PTB's AIORateLimiter, as in section 1 (botproc.py). That limiter holds each
process to Telegram's ~30 messages/s, a limit of Telegram's servers, not a cost of the
bot; with it, a saturation run would measure the limiter. The database is migrated and
seeded by the benchmark before this starts. Each worker logs "taking updates at" once
ready (stderr)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.app import ALLOWED_UPDATES, build_application
from bot.settings import load_settings
from bot.webhook import Webhook, serve_one, serve_workers, webhook_app
from storage.db import is_postgres_url

PATH = "/telegram/hook"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhookproc")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("kind", choices=["portal"])
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--db", required=True, help="a SQLite path or a postgresql:// URL")
    args = parser.parse_args()
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    where = {"database_url": args.db} if is_postgres_url(args.db) else {"db_path": Path(args.db)}
    settings = load_settings(
        bot_token=args.token,
        api_base_url=args.base_url,
        practice_name="Benchmark Practice",
        **where,
    )
    url = f"http://127.0.0.1:{args.port}{PATH}"
    hook = Webhook(url, PATH, ALLOWED_UPDATES)
    make = webhook_app(lambda: build_application(settings, polling=False, rate_limit=False), hook)
    if args.workers == 1:
        asyncio.run(serve_one(make, listen="127.0.0.1", port=args.port))
    else:
        serve_workers(make, listen="127.0.0.1", port=args.port, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
