"""`python -m bot playground`: the real bot, a Bot API emulator and a web page with three
phones, all on 127.0.0.1, so anyone can try the whole journey without Telegram or a token.

`playground()` is also what the browser tests start, so they exercise exactly this wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bot.context import PortalApp
from bot.i18n import translator
from bot.settings import Settings
from playground.demo import ALEX, INVITED, PRACTITIONER, SAM, seed_demo
from playground.emulator import BotAPIServer
from playground.page import Hint, Phone, PlaygroundPage
from storage import open_database

log = logging.getLogger(__name__)

# Never a real token: the bot only ever talks to the emulator on 127.0.0.1.
TOKEN = "100000001:PLAYGROUND-not-a-real-token"
BOT_USERNAME = "portal_playground_bot"
DEFAULT_PORT = 8080
LANGUAGE = "en"
PRACTITIONER_ID, PARENT_ID, PARTNER_ID = 7_000_001, 7_000_002, 7_000_003


class PlaygroundError(Exception):
    """One line for the command line, e.g. the port is taken."""


@dataclass
class Playground:
    url: str
    server: BotAPIServer
    page: PlaygroundPage
    app: PortalApp | None  # None: the bot runs elsewhere
    settings: Settings
    links: dict[str, str]  # the demo's invite links by phone; empty if it was seeded before


def _typed_date(value: dt.date, settings: Settings) -> str:
    """The date as the bot's own prompts show it (day/month order of the locale)."""
    return translator(LANGUAGE, settings.default_locale).typed_date(value)


def _first_name(full_name: str) -> str:
    words = full_name.split()
    return words[1] if len(words) > 1 and words[0] in ("Dr", "Dr.") else words[0]


def _phones() -> list[Phone]:
    return [
        Phone(
            "practitioner",
            PRACTITIONER_ID,
            _first_name(PRACTITIONER),
            PRACTITIONER,
            "practitioner",
        ),
        Phone("parent", PARENT_ID, _first_name(SAM.full_name), SAM.full_name, "parent"),
        Phone("partner", PARTNER_ID, _first_name(ALEX.full_name), ALEX.full_name, "partner"),
    ]


async def _seed(settings: Settings, today: dt.date | None) -> dict[str, str]:
    db = open_database(settings)
    try:
        await db.migrate()
        result = await seed_demo(
            db,
            bot_username=BOT_USERNAME,
            ttl_days=settings.invite_ttl_days,
            practitioner_telegram_id=PRACTITIONER_ID,
            today=today,
        )
    finally:
        await db.close()
    return dict(result.links)


@asynccontextmanager
async def playground(
    settings: Settings,
    *,
    db_path: Path,
    port: int = 0,
    poll_timeout: int = 10,
    today: dt.date | None = None,
    bot_elsewhere: bool = False,
) -> AsyncIterator[Playground]:
    """Emulator and page on 127.0.0.1:`port`, a seeded database at `db_path`, the bot running
    (or, `bot_elsewhere`, left to run on its own against this emulator: a deployment's
    workers behind their webhook, docs/deploy.md)."""
    from bot.app import build_application, running

    # Update ids go on rising from one run to the next, as Telegram's do: with a kept --db,
    # the bot would otherwise take a new update for one it has handled (skip_redelivered).
    server = BotAPIServer(token=TOKEN, bot_username=BOT_USERNAME, first_update_id=int(time.time()))
    page = PlaygroundPage(server, _phones(), settings.timezone)
    try:
        await server.start(port=port, setup=page.install)
    except OSError as exc:
        raise PlaygroundError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); try another --port"
        ) from None
    try:
        bot_settings = settings.model_copy(
            update={
                "bot_token": SecretStr(TOKEN),
                "api_base_url": server.base_url,
                "db_path": db_path,
            }
        )
        links = await _seed(bot_settings, today)
        for key, link in links.items():
            if key in page.phones and key in INVITED:
                person = INVITED[key]
                page.phones[key].hint = Hint(
                    link,
                    person.full_name,
                    _typed_date(person.date_of_birth, bot_settings),
                    person.email,
                )
        if bot_elsewhere:
            yield Playground(
                url=f"http://127.0.0.1:{server.port}/",
                server=server,
                page=page,
                app=None,
                settings=bot_settings,
                links=links,
            )
            return
        application = build_application(bot_settings)
        async with running(application, poll_timeout=poll_timeout) as app:
            yield Playground(
                url=f"http://127.0.0.1:{server.port}/",
                server=server,
                page=page,
                app=app,
                settings=bot_settings,
                links=links,
            )
    finally:
        await server.stop()


async def serve(
    settings: Settings,
    *,
    port: int = DEFAULT_PORT,
    db: Path | None = None,
    bot_elsewhere: bool = False,
) -> int:
    """Run until Ctrl-C (or SIGTERM); a throwaway database unless `db` is given."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    with tempfile.TemporaryDirectory(prefix="portal-playground-") as tmp:
        db_path = db if db is not None else Path(tmp) / "portal.db"
        async with playground(
            settings, db_path=db_path, port=port, bot_elsewhere=bot_elsewhere
        ) as pg:
            again = "" if pg.links else " (the demo family was there already: no new links)"
            if bot_elsewhere:
                print(
                    f"\nTelegram's stand-in: PORTAL_BOT_TOKEN={TOKEN} "
                    f"PORTAL_API_BASE_URL={pg.server.base_url}; start the bot with those "
                    "(and the same database), then open the page.",
                    flush=True,
                )
            if pg.settings.database_url is not None:  # PORTAL_DATABASE_URL: kept, of course
                where = f"{pg.settings.database_name}{again}"
            else:
                where = f"{db_path}{again if db else ' (deleted on exit)'}"
            print(
                f"\nPlayground ready: open {pg.url} in your browser.\n"
                f"Database: {where}. Press Ctrl-C to stop.\n",
                flush=True,
            )
            await stop.wait()
            print("Stopping…", flush=True)
    return 0
