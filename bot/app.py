"""The one Application factory: `run`, the tests and the benchmarks all wire the bot here."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import policy
from bot.context import BotData, Portal, PortalApp, PortalContext, portal, resolve_caller
from bot.outbox import Sender
from bot.persistence import (
    PERSIST_EVERY_S,
    Deadlines,
    SQLitePersistence,
    commit_periodically,
    flush_after_update,
    skip_redelivered,
)
from bot.portalbot import PortalBot
from bot.processing import OneAtATimePerUser
from bot.settings import Settings
from bot.sweep import SWEEP_EVERY_S, sweep_job
from bot.transport import AiohttpRequest
from bot.updates import Unreadable, ignore_unreadable
from conversations import Flows
from conversations.addpatient import addpatient_conversation
from conversations.invite import invite_conversation
from conversations.share import share_conversation
from conversations.signin import signin_conversation
from conversations.unlink import unlink_conversation
from handlers import start
from handlers.activity import activity_handlers
from handlers.approvals import approval_handler
from handlers.errors import report_error
from handlers.language import language_handlers, set_command_menus
from handlers.manage import manage_handlers
from handlers.notices import outbox_first, outbox_last, renderer
from handlers.private_only import private_chats_only
from handlers.restarts import settle_restored_conversations
from handlers.signout import signout_handlers
from handlers.views import find_typed_name, view_handlers
from storage import Database

log = logging.getLogger(__name__)

# my_chat_member: being added to a group, which the bot then leaves (handlers/private_only.py).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]


async def _start(app: PortalApp) -> None:
    db = portal(app).db
    await db.connect()
    await db.migrate()
    await settle_restored_conversations(app)
    portal(app).sender.start()  # what was owed before a restart goes out now
    assert app.job_queue is not None
    # Telegram keeps the menus between runs, so refreshing them need not hold up the first
    # poll by a round trip: they go out as soon as the bot is running.
    # No misfire grace: APScheduler would skip the job if start-up ran a second late.
    app.job_queue.run_once(
        _refresh_command_menus,
        when=0,
        name="command menus",
        job_kwargs={"misfire_grace_time": None},
    )
    app.job_queue.run_repeating(
        commit_periodically, interval=PERSIST_EVERY_S, first=PERSIST_EVERY_S
    )
    app.job_queue.run_repeating(sweep_job, interval=SWEEP_EVERY_S, first=SWEEP_EVERY_S)
    # What start-up built lives as long as the process (modules, handlers, PTB's objects):
    # kept out of the collector's sight, a full collection walks only what updates leave
    # behind: ~20 ms with every user's update waiting, not 60-75 ms (benchmarks/README).
    gc.collect()  # start-up's own garbage first: frozen, a cycle would never be freed
    gc.freeze()


async def _refresh_command_menus(context: PortalContext) -> None:
    await set_command_menus(context.application)


async def _stop(app: PortalApp) -> None:
    try:
        await portal(app).sender.stop()
        await portal(app).db.close()
    finally:
        gc.unfreeze()  # a process that goes on (the tests) collects this Application's objects


def build_application(
    settings: Settings, *, rate_limit: bool = True, polling: bool = True
) -> PortalApp:
    """A ready Application for this token, Bot API server and database. Without
    `polling` it has no Updater: the webhook route (bot/webhook.py) feeds it instead."""
    # One TLS context for both HTTP clients (PTB's defaults otherwise: 256 connections,
    # and 1 for getUpdates): each client would load the CA bundle itself, ~50 ms apiece
    # between launch and the first poll.
    tls = httpx.create_ssl_context()
    bot = PortalBot(  # bot/portalbot.py: replies held in a step, updates parsed one by one
        settings.require_token(),
        base_url=settings.api_base_url,
        base_file_url=settings.file_base_url,
        defaults=Defaults(
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        ),
        request=AiohttpRequest(256, tls),  # bot/transport.py
        get_updates_request=AiohttpRequest(1, tls),
        rate_limiter=AIORateLimiter(max_retries=2) if rate_limit else None,
    )
    db = Database(settings.db_path)
    policy.install(policy.Policy.from_settings(settings))  # the access checks apply it
    deadlines = Deadlines(settings.conversation_timeout)
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(OneAtATimePerUser())  # see bot/processing.py
        .post_init(_start)
        .post_shutdown(_stop)
        .persistence(SQLitePersistence(db, deadlines))
        .context_types(ContextTypes(context=PortalContext, bot_data=BotData))
    )
    if not polling:  # the webhook route (bot/webhook.py) feeds the update queue
        builder = builder.updater(None)
    app = builder.build()
    sender = Sender(db, app.bot)
    p = Portal(settings=settings, db=db, sender=sender)
    sender.render = renderer(p)
    app.bot_data.portal = p
    add_handlers(app, Flows(settings.conversation_timeout, deadlines))
    return app


def add_handlers(app: PortalApp, flows: Flows) -> None:
    # Before every handler, in this order (one handler runs per group; a raised
    # ApplicationHandlerStop ends the update, groups 98 and 99 included):
    # -5: what stands in for an update that could not be parsed (bot/updates.py) goes
    #     no further.
    app.add_handler(TypeHandler(Unreadable, ignore_unreadable), group=-6)
    # -5: an update Telegram sent again after a crash, handled before, ends here.
    app.add_handler(TypeHandler(Update, skip_redelivered), group=-5)
    # -4: who is asking, read once for the whole update (bot/context.py): every later
    #     handler finds it on `context.caller`.
    app.add_handler(TypeHandler(Update, resolve_caller), group=-4)
    # -3: note what this update queues in the outbox, and send what waited for this user
    #     to come back (they had blocked the bot).
    app.add_handler(TypeHandler(Update, outbox_first), group=-3)
    # -2: the bot speaks about patients only in a private chat with them, so an update
    #     from a group or channel must never reach a handler that shows data, starts or
    #     advances a flow, or signs someone in (a burned invite is written in its own
    #     transaction).
    app.add_handler(TypeHandler(Update, private_chats_only), group=-2)
    # -1: text typed as a name to find in /switch (any other update ends that question).
    app.add_handler(TypeHandler(Update, find_typed_name), group=-1)
    # Conversations first: inside a flow, their states decide what a message means.
    app.add_handler(signin_conversation(flows))
    app.add_handler(invite_conversation(flows))
    app.add_handler(addpatient_conversation(flows))
    app.add_handler(share_conversation(flows))
    app.add_handler(unlink_conversation(flows))
    app.add_handler(approval_handler())
    for handler in (
        *view_handlers(),
        *manage_handlers(),
        *activity_handlers(),
        *language_handlers(),
        *signout_handlers(),
    ):
        app.add_handler(handler)
    app.add_handler(CommandHandler("start", start.show_home))
    app.add_handler(CallbackQueryHandler(start.turn_home_page, pattern=r"^home:p:"))
    app.add_handler(CommandHandler("help", start.show_help))
    app.add_handler(CommandHandler("cancel", start.nothing_to_cancel))
    app.add_handler(MessageHandler(filters.ALL, start.not_understood))
    app.add_handler(CallbackQueryHandler(start.stale_button))
    app.add_error_handler(report_error)
    # After every handler: send what the update queued (notices to others), then write
    # the conversation step and drafts just taken.
    app.add_handler(TypeHandler(Update, outbox_last), group=98)
    app.add_handler(TypeHandler(Update, flush_after_update), group=99)


@asynccontextmanager
async def running(
    app: PortalApp,
    *,
    poll_timeout: int = 10,
) -> AsyncIterator[PortalApp]:
    """Run polling inside an existing event loop, in the order `run_polling` uses
    (initialize, post_init, start polling, start; then the reverse), for tests, the
    playground and benchmarks."""
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(
        poll_interval=0.0, timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
    )
    await app.start()
    try:
        yield app
    finally:
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        if app.post_stop:
            await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
