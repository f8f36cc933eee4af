"""`run --webhook-url`: Telegram POSTs each update to a small aiohttp route of our own.

PTB's webhook server parses the body itself and has no say for us: an update it cannot
read is logged whole at CRITICAL (other people's names and dates of birth) and answered
400, which makes Telegram deliver it again, for ever. As in PTB's custom webhook example,
the Application runs without an Updater and this route feeds its update queue. Every
request must carry the secret token, as with PTB's server; each update is parsed on its
own as in polling (bot/updates.py), and whatever came of it, Telegram hears 200 and moves
on to the next.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Sequence

from aiohttp import web

from bot.context import PortalApp
from bot.updates import Unreadable, parse_update

log = logging.getLogger("portal.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_routes(application: PortalApp, path: str, secret: str) -> web.Application:
    """An aiohttp application taking updates on POST `path`."""
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected) or request.content_type != "application/json":
            return web.Response(status=403)  # as PTB's server: not from our Telegram webhook
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400)  # not even JSON: no update to move past
        update = parse_update(data, application.bot)
        if update is not None and not isinstance(update, Unreadable):
            application.bot.insert_callback_data(update)
            await application.update_queue.put(update)
        return web.Response()

    routes = web.Application()
    routes.router.add_post("/" + path.lstrip("/"), receive)
    return routes


async def serve_webhook(
    application: PortalApp,
    *,
    url: str,
    path: str,
    listen: str,
    port: int,
    secret: str,
    allowed_updates: Sequence[str],
) -> None:
    """Run until SIGINT or SIGTERM, in the order run_webhook uses: initialize, post_init,
    the web server and setWebhook, start; then the reverse."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(webhook_routes(application, path, secret), access_log=None)
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await runner.setup()
        await web.TCPSite(runner, listen, port).start()
        await application.bot.set_webhook(
            url, allowed_updates=allowed_updates, secret_token=secret, max_connections=40
        )
        await application.start()
        log.info("taking updates at %s (listening on %s:%d)", url, listen, port)
        await stop.wait()
    finally:
        await runner.cleanup()
        if application.running:
            await application.stop()
        if application.post_stop:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)
