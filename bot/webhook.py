"""`run --webhook-url`: Telegram POSTs each update to a small aiohttp route of our own, in
one process or in several workers behind one port.

PTB's webhook server parses the body itself and has no say for us: an update it cannot
read is logged whole at CRITICAL (other people's names and dates of birth) and answered
400, which makes Telegram deliver it again, for ever. As in PTB's custom webhook example,
the Application runs without an Updater and this route gives it the updates. Every
request must carry the secret token; each update is parsed on its own as in polling
(bot/updates.py).

The route answers only once the update was handled. Telegram sends a queue's next update
(a chat's next message, a person's next tap) only after the last one was answered, so
each queue keeps its order; and an update whose worker died before answering is sent
again, which the exactly-once machinery recognises (bot/persistence.py, the outbox). A
person's text and tap travel in two queues and can arrive at once, at two workers: each
waits for the person's turn (this worker's TurnLocks, then the database's lock across
workers).

Several workers (`--workers N`) are gunicorn's, with aiohttp's worker class: gunicorn
forks them, restarts one that dies, and shares the port. Each builds its own Application
from the database: nothing it needs is kept in memory between updates. setWebhook is
called once per deployment: the first worker to lock the deployment's webhook row in the
database calls it, the others find it done. They share one secret: the one given in
PORTAL_WEBHOOK_SECRET, or one that worker draws; the database keeps only its digest,
which every worker checks requests against.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.context import PortalApp, portal
from bot.processing import turn_key
from bot.updates import Unreadable, parse_update
from storage import clock, deployment
from storage.db import StorageUnavailable, TurnLocks

log = logging.getLogger("portal.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Deliveries Telegram may make at once, all workers together: its most (the default is
# 40). Each is one person's update; a worker holds a database connection for each.
MAX_CONNECTIONS = 100


class CannotListen(Exception):
    """The port is taken (or the address is not this machine's): one line for the operator."""


@dataclass(frozen=True)
class Webhook:
    """Where Telegram posts, and what it is asked for."""

    url: str
    path: str
    allowed_updates: Sequence[str]
    secret: str | None = None  # PORTAL_WEBHOOK_SECRET; None: drawn once per deployment

    def setting(self, secret_digest: str) -> dict[str, Any]:
        return {
            "url": self.url,
            "allowed_updates": list(self.allowed_updates),
            "max_connections": MAX_CONNECTIONS,
            "secret_sha256": secret_digest,
        }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def set_webhook_once(application: PortalApp, hook: Webhook) -> str:
    """Give Telegram the webhook unless this deployment already did; the secret's digest.

    The row stays locked while Telegram is asked, so a worker starting at the same moment
    waits, then finds the webhook stored and asks nothing."""
    db = portal(application).db
    async with db.transaction(change=False) as conn:
        stored = await deployment.lock_webhook(conn)
        if stored is not None:
            same = stored == hook.setting(str(stored.get("secret_sha256")))
            if same and (hook.secret is None or stored["secret_sha256"] == digest(hook.secret)):
                return str(stored["secret_sha256"])
        secret = hook.secret or secrets.token_urlsafe(32)
        await application.bot.set_webhook(
            hook.url,
            allowed_updates=hook.allowed_updates,
            secret_token=secret,
            max_connections=MAX_CONNECTIONS,
        )
        await deployment.store_webhook(conn, hook.setting(digest(secret)), clock.now())
        log.info("webhook set: %s", hook.url)
        return digest(secret)


def webhook_routes(
    application: PortalApp, path: str, expected: Callable[[], str | None]
) -> web.Application:
    """An aiohttp application taking updates on POST `path`; `expected()` is the secret's
    digest (None until the webhook is set: every request is refused until then)."""
    turns = TurnLocks()

    async def receive(request: web.Request) -> web.Response:
        wanted = expected()
        given = digest(request.headers.get(SECRET_HEADER, ""))
        if (
            wanted is None
            or not hmac.compare_digest(given, wanted)
            or request.content_type != "application/json"
        ):
            return web.Response(status=403)  # as PTB's server: not from our Telegram webhook
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400)  # not even JSON: no update to move past
        update = parse_update(data, application.bot)
        if update is None or isinstance(update, Unreadable):
            return web.Response()  # taken and skipped, so that Telegram moves on
        key = turn_key(update)
        if key is None:  # nobody's: nothing to wait for
            await application.process_update(update)
            return web.Response()
        # This worker's own waiters queue here, each holding nothing; then the lock across
        # workers (a database connection each) is taken by one at a time.
        try:
            async with turns.turn(key), portal(application).db.user_turn(key):
                await application.process_update(update)
        except StorageUnavailable as exc:  # no turn to take: told as any handler's would be
            await application.process_error(update, exc)
        return web.Response()

    routes = web.Application()
    routes.router.add_post("/" + path.lstrip("/"), receive)
    return routes


AppFactory = Callable[[], Awaitable[web.Application]]


def webhook_app(build: Callable[[], PortalApp], hook: Webhook) -> AppFactory:
    """What each worker (or the one process) runs: its own Application, started with the
    web server and stopped with it, in the order run_webhook uses."""

    async def make() -> web.Application:
        application = build()
        secret: list[str] = []
        routes = webhook_routes(application, hook.path, lambda: secret[0] if secret else None)

        async def start(_: web.Application) -> None:
            await application.initialize()
            if application.post_init:
                await application.post_init(application)
            secret.append(await set_webhook_once(application, hook))
            await application.start()
            log.info("taking updates at %s", hook.url)

        async def stop(_: web.Application) -> None:
            if application.running:
                await application.stop()
            if application.post_stop:
                await application.post_stop(application)
            await application.shutdown()
            if application.post_shutdown:
                await application.post_shutdown(application)

        routes.on_startup.append(start)
        routes.on_cleanup.append(stop)
        return routes

    return make


async def serve_one(make: AppFactory, *, listen: str, port: int) -> None:
    """One process: run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Bound before the Application starts (as gunicorn's master binds before forking): a
    # delivery that comes as soon as the webhook is set waits in the backlog, not refused.
    try:
        sock = socket.create_server((listen, port))
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(
            f"cannot listen on {listen}:{port} ({why}); try another --port"
        ) from None
    runner = web.AppRunner(await make(), access_log=None)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def bound(listen: str, port: int) -> socket.socket:
    """A listening socket on the address, or CannotListen."""
    try:
        return socket.create_server((listen, port))
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(
            f"cannot listen on {listen}:{port} ({why}); try another --port"
        ) from None


def serve_workers(make: AppFactory, *, listen: str, port: int, workers: int) -> None:
    """N worker processes on one port, run by gunicorn with aiohttp's worker class: the
    master forks them, replaces one that dies, and stops them all on SIGINT or SIGTERM."""
    from gunicorn.app.base import BaseApplication

    bound(listen, port).close()  # taken: one line now, not gunicorn's retries

    class Workers(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
        def load_config(self) -> None:
            self.cfg.set("bind", f"{listen}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "aiohttp.GunicornWebWorker")
            # An update is answered once handled: a slow one must not get its worker killed.
            self.cfg.set("timeout", 120)
            self.cfg.set("graceful_timeout", 30)
            self.cfg.set("accesslog", None)  # a URL path is all it would add; no patient data

        def load(self) -> AppFactory:
            return make

    Workers().run()
