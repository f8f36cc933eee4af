"""The one Application factory: `run`, the tests and the benchmarks all wire the bot here."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, cast

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

from bot import callbacks as cb
from bot import policy
from bot.context import BotData, Portal, PortalApp, PortalContext, portal
from bot.dispatch import Button, Table
from bot.outbox import Sender
from bot.portalbot import PortalBot
from bot.processing import OneAtATimePerUser
from bot.settings import Settings
from bot.sweep import SWEEP_EVERY_S, sweep_job
from bot.transport import AiohttpRequest
from bot.updates import Unreadable, ignore_unreadable
from bot.userstate import now_ms, store_after_update
from conversations import Flows
from conversations.addpatient import addpatient_conversation
from conversations.invite import invite_conversation
from conversations.share import share_conversation
from conversations.signin import signin_conversation
from conversations.timeouts import Sweeping, load_user_state, sweep_every, sweep_timed_out_flows
from conversations.unlink import unlink_conversation
from handlers import (
    activity,
    approvals,
    language,
    manage,
    notifications,
    practice_access,
    reminders,
    safeguarding,
    signout,
    start,
    views,
)
from handlers.errors import report_error
from handlers.language import set_command_menus
from handlers.notices import outbox_first, outbox_last, renderer
from handlers.private_only import private_chats_only
from handlers.views import find_typed_name
from storage import open_database

log = logging.getLogger(__name__)

Handler = Callable[[Update, PortalContext], Coroutine[Any, Any, None]]

# my_chat_member: being added to a group, which the bot then leaves (handlers/private_only.py).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]


async def _start(app: PortalApp) -> None:
    db = portal(app).db
    await db.connect()
    await db.migrate()
    await portal(app).sender.start()  # what was owed before a restart goes out now
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
    # Conversations left past their deadline, on every worker: each is claimed by one
    # (conversations/timeouts.py); one abandoned while no worker ran is told at once.
    every = sweep_every(portal(app).settings.conversation_timeout)
    app.job_queue.run_repeating(
        sweep_timed_out_flows, interval=every, first=every, data=Sweeping(now_ms())
    )
    app.job_queue.run_repeating(sweep_job, interval=SWEEP_EVERY_S, first=SWEEP_EVERY_S)
    # What start-up built lives as long as the process (modules, handlers, PTB's objects):
    # kept out of the collector's sight, a full collection walks only what updates leave
    # behind, a far shorter pause with every user's update waiting (benchmarks/README.md).
    gc.collect()  # start-up's own garbage first: frozen, a cycle would never be freed
    gc.freeze()


async def _refresh_command_menus(context: PortalContext) -> None:
    if await portal(context.application).lead.check():  # one worker is enough
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
    # and 1 for getUpdates): each client would load the CA bundle itself, between launch
    # and the first poll (benchmarks/README.md).
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
        # No overall limit in the library: it counts per process, so N workers would allow N
        # times Telegram's 30/s, and it holds back replies, which go at once. The outbox's
        # sender paces what the bot sends on its own, on one worker (bot/outbox.py Pace);
        # the limiter still waits out a 429's retry_after.
        rate_limiter=AIORateLimiter(overall_max_rate=0, max_retries=2) if rate_limit else None,
    )
    db = open_database(settings)
    policy.install(policy.Policy.from_settings(settings))  # the access checks apply it
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(OneAtATimePerUser())  # see bot/processing.py
        .post_init(_start)
        .post_shutdown(_stop)
        .context_types(ContextTypes(context=PortalContext, bot_data=BotData))
    )
    if not polling:  # the webhook route (bot/webhook.py) feeds the update queue
        builder = builder.updater(None)
    # The builder types the job queue by PTB's default context and the bot as PortalBot;
    # PortalApp (bot/context.py) names the same Application as handlers see it.
    app = cast("PortalApp", builder.build())
    sender = Sender(db, app.bot)
    p = Portal(settings=settings, db=db, sender=sender)
    sender.render = renderer(p)
    app.bot_data.portal = p
    add_handlers(app, Flows(settings.conversation_timeout))
    return app


def add_handlers(app: PortalApp, flows: Flows) -> None:
    # Before every handler, in this order (one handler runs per group; a raised
    # ApplicationHandlerStop ends the update, groups 98 and 99 included, so a handler that
    # raises it after changing the user's state stores it first, as find_typed_name does):
    # -6: what stands in for an update that could not be parsed (bot/updates.py) goes
    #     no further.
    app.add_handler(TypeHandler(Unreadable, ignore_unreadable), group=-6)
    # -5: in one read for this update (conversations/timeouts.py): the user's stored
    #     state (bot/userstate.py), their drafts into context.user_data and their
    #     conversations for the flows below; and who is asking (bot/context.py), which
    #     every later handler finds on `context.caller`. An update Telegram sent again
    #     after a crash, handled before, ends here; a flow left past its deadline ends,
    #     with its timeout message.
    app.add_handler(TypeHandler(Update, load_user_state), group=-5)
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
    # Group 0: the first handler (in this order) that matches an update takes it.
    # Conversations first (conversations/__init__.py): inside a flow, their states decide
    # what a message means, and their own /cancel and buttons come before the ones below;
    # a step stores the user's state before its replies go out.
    for conversation in (
        signin_conversation(flows),
        invite_conversation(flows),
        addpatient_conversation(flows),  # its entry point: ➕ Add a patient on the home menu
        share_conversation(flows),  # its entry point: Share <name> with someone, in /access
        unlink_conversation(flows),
    ):
        app.add_handler(conversation)
    app.add_handler(Table(commands_and_buttons()))  # each found by name (bot/dispatch.py)
    # Last: what nothing above took.
    app.add_handler(MessageHandler(filters.ALL, start.not_understood))
    app.add_handler(CallbackQueryHandler(start.stale_button))  # old, or forged
    app.add_error_handler(report_error)
    # After every handler: send what the update queued (notices to others), then write
    # what the update changed in the user's state and no step stored yet (nothing when
    # nothing changed), and drop it from memory (bot/userstate.py).
    app.add_handler(TypeHandler(Update, outbox_last), group=98)
    app.add_handler(TypeHandler(Update, store_after_update), group=99)


def commands_and_buttons() -> list[CommandHandler[PortalContext, None] | Button]:
    """Every command and button outside the conversations, by area: a command, or a
    button's kind (bot/callbacks.py), and the handler it reaches. Each is found by its
    command's name or its kind's prefix (bot/dispatch.py), which no two share."""
    return [
        # Home and help (handlers/start.py)
        CommandHandler("start", start.show_home),
        CommandHandler("help", start.show_help),
        CommandHandler("cancel", start.nothing_to_cancel),  # outside a flow; a flow has its own
        Button(cb.TurnHomePage, start.turn_home_page),
        # The portal views and /switch (handlers/views.py)
        CommandHandler("appointments", views.show_appointments),
        CommandHandler("invoices", views.show_invoices),
        CommandHandler("records", views.show_records),
        CommandHandler("details", views.show_details),
        CommandHandler("switch", views.show_switch),
        Button(cb.OpenArea, views.open_area),
        Button(cb.OpenSwitch, views.open_switch),
        Button(cb.TurnPage, views.turn_page),
        Button(cb.SwitchTo, views.switch_to),
        Button(cb.TurnSwitchPage, views.turn_switch_page),
        Button(cb.TurnFoundPage, views.turn_found_page),
        Button(cb.AskToCancel, views.ask_to_cancel),
        Button(cb.KeepAppointment, views.keep_appointment),
        Button(cb.CancelAppointment, views.cancel_appointment),
        Button(cb.ConfirmAppointment, views.confirm_appointment),
        # /access (handlers/manage.py)
        CommandHandler("access", practice_access.show_access),  # a practitioner's, or manage's
        Button(cb.OpenAccess, manage.show_access),
        Button(cb.BackToAccess, manage.back_to_access),
        Button(cb.OpenGrant, manage.open_grant),
        Button(cb.ChangeLevel, manage.change_level),
        Button(cb.ChangeRole, manage.change_role),
        Button(cb.AskToRevoke, manage.ask_to_revoke),
        Button(cb.RevokeAccess, manage.revoke_access),
        Button(cb.AskToLeave, manage.ask_to_leave),
        Button(cb.StopAccessing, manage.stop_accessing),
        Button(cb.WithdrawRequest, manage.withdraw_request),
        Button(cb.OpenDependent, manage.open_dependent),
        Button(cb.GiveOwnLogin, manage.give_own_login),
        # Requests and offers, on their cards and in /access (handlers/approvals.py)
        Button(cb.ApproveRequest, approvals.approve_request),
        Button(cb.ApproveWithChanges, approvals.show_lower_options),
        Button(cb.ApproveAs, approvals.approve_as),
        Button(cb.BackToRequest, approvals.back_to_request),
        Button(cb.DenyRequest, approvals.deny_request),
        # /activity (handlers/activity.py)
        CommandHandler("activity", activity.show_activity),
        Button(cb.OpenActivity, activity.show_activity),
        Button(cb.TurnLogPage, activity.turn_log_page),
        # /language (handlers/language.py)
        CommandHandler("language", language.choose_language),
        Button(cb.ChooseLanguage, language.save_language),
        # Signing out (handlers/signout.py); /unlink asks in conversations/unlink.py
        CommandHandler("signout", signout.ask_to_sign_out),
        Button(cb.SignOut, signout.sign_out),
        Button(cb.StaySignedIn, signout.stay_signed_in),
        Button(cb.UnlinkAccount, signout.unlink_account),
        Button(cb.KeepLinked, signout.keep_linked),
        # Reminders and new-item notices, on the messages the bot sends (handlers/reminders.py)
        Button(cb.ConfirmFromReminder, reminders.confirm_from_reminder),
        Button(cb.CancelFromReminder, reminders.ask_to_cancel_from_reminder),
        Button(cb.ConfirmCancelFromReminder, reminders.cancel_from_reminder),
        Button(cb.KeepFromReminder, reminders.keep_from_reminder),
        Button(cb.OpenNewItem, reminders.open_new_item),
        # /notifications (handlers/notifications.py)
        CommandHandler("notifications", notifications.show_notifications),
        Button(cb.ShowNotifications, notifications.back_to_notifications),
        Button(cb.ChooseNotificationsFor, notifications.show_notifications_for),
        Button(cb.ToggleTopic, notifications.toggle_topic),
        Button(cb.ToggleQuietHours, notifications.toggle_quiet_hours),
        Button(cb.ShiftQuietHours, notifications.shift_quiet_hours),
        # The practice's policy: its notices and cards, and stopping all access in /access
        # (handlers/safeguarding.py)
        Button(cb.ContinueAccess, safeguarding.continue_access),
        Button(cb.EndAccessAsYoung, safeguarding.deny_access),
        Button(cb.ApproveClinical, safeguarding.approve_clinical),
        Button(cb.KeepAdministrative, safeguarding.keep_administrative),
        Button(cb.KeepAfterAdulthood, safeguarding.keep_access),
        Button(cb.RenewAccess, safeguarding.renew_access),
        Button(cb.AskPatientToRenew, safeguarding.ask_to_renew),
        Button(cb.RenewForPatient, safeguarding.renew_for_patient),
        Button(cb.EndForPatient, safeguarding.end_for_patient),
        Button(cb.AskToStopAll, safeguarding.ask_to_stop_all),
        Button(cb.StopAllAccess, safeguarding.stop_all),
        # A practitioner's /access: who has access to a patient, suspending one
        # (handlers/practice_access.py)
        Button(cb.OpenPatientAccess, practice_access.show_patient_access),
        Button(cb.AskToSuspend, practice_access.ask_to_suspend),
        Button(cb.SuspendAccess, practice_access.suspend_access),
    ]


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
