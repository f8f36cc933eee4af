"""Signing in from a practitioner's invite link: /start <token>, then the date of birth."""

from __future__ import annotations

import datetime as dt
import logging

from telegram import Update
from telegram.ext import (
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import access, invitations
from bot.context import Caller, PortalContext
from bot.dates import parse_date
from bot.i18n import Translator
from bot.invitations import InviteState
from bot.text import esc
from conversations import Flows, conversation
from handlers.menu import home_keyboard

log = logging.getLogger(__name__)

ASK_DOB = 0
INVITE_KEY = "signin_invite_id"


def _refusal(
    _: Translator, state: InviteState, check: invitations.InviteCheck, tz: dt.tzinfo
) -> str:
    ask = _("Please ask your practice for a new invite link.")
    if state is InviteState.MALFORMED or state is InviteState.UNKNOWN:
        return _("I don't recognise this link. It may have been copied incompletely.") + " " + ask
    if state is InviteState.USED:
        return _("This invite link has already been used.") + " " + ask
    if state is InviteState.EXPIRED:
        assert check.invite is not None
        until = _.day_of(check.invite.expires_at, tz)
        return _("This invite link expired on {date}.").format(date=until) + " " + ask
    if state is InviteState.BURNED:
        return (
            _(
                "This invite link is no longer valid: it was posted in a group chat, "
                "where others could see it."
            )
            + " "
            + ask
        )
    if state is InviteState.LOCKED:
        return (
            _(
                "This invite link was locked after too many wrong dates of birth, "
                "to protect the patient."
            )
            + " "
            + ask
        )
    if state is InviteState.HAS_OTHER_PORTAL:
        return _(
            "This Telegram account is already signed in to a portal, and one account can hold "
            "only one portal. To manage someone else's records, send /start and add them as a "
            "patient you access."
        )
    if state is InviteState.PORTAL_TAKEN:
        return _(
            "This portal is already connected to another Telegram account. If that isn't you, "
            "please contact your practice."
        )
    if state is InviteState.NO_DATE_OF_BIRTH:
        return (
            _("This invite link has no date of birth to check, so it can't be used safely.")
            + " "
            + ask
        )
    return ask


async def open_invite(update: Update, context: PortalContext) -> int:
    """Checks the link from /start <token>; asks the date of birth."""
    who = context.caller
    _ = who._
    message = update.effective_message
    assert message is not None
    payload = (context.args or [""])[0]
    check = await invitations.check_invite(context.portal.db, payload, who.telegram_user_id)
    if check.state is InviteState.SIGNED_IN_ALREADY:
        await message.reply_text(
            _("You're already signed in. Here is your menu."), reply_markup=home_keyboard(_)
        )
        return ConversationHandler.END
    if check.state is not InviteState.VALID or check.invite is None or check.patient is None:
        await message.reply_text(_refusal(_, check.state, check, context.portal.settings.tz))
        return ConversationHandler.END
    # Always: a link must never sign anyone in without the date of birth it checks.
    context.user_data[INVITE_KEY] = check.invite.id  # type: ignore[index]
    await message.reply_text(
        _(
            "Welcome! To keep your records safe, please type your date of birth "
            "(for example {example})."
        ).format(example=_.date_example())
    )
    return ASK_DOB


async def check_dob(update: Update, context: PortalContext) -> int:
    """Compares the typed date of birth; signs in, re-asks, or ends on the third miss."""
    who = context.caller
    _ = who._
    message = update.effective_message
    assert message is not None and message.text is not None
    invite_id = context.user_data.get(INVITE_KEY)  # type: ignore[union-attr]
    if invite_id is None:
        return ConversationHandler.END
    answer = parse_date(message.text, _.format_locale)
    if answer is None:
        await message.reply_text(
            _("I couldn't read that as a date. Please type it like {example}.").format(
                example=_.date_example()
            )
        )
        return ASK_DOB
    result = await invitations.check_date_of_birth(
        context.portal.db, invite_id, answer, who.telegram_user_id
    )
    if result.burned:
        context.user_data.pop(INVITE_KEY, None)  # type: ignore[union-attr]
        check = invitations.InviteCheck(InviteState.BURNED)
        await message.reply_text(_refusal(_, InviteState.BURNED, check, context.portal.settings.tz))
        return ConversationHandler.END
    if result.matches:
        return await _finish(update, context, who, invite_id, answer)
    if result.locked:
        context.user_data.pop(INVITE_KEY, None)  # type: ignore[union-attr]
        await message.reply_text(
            _(
                "That date doesn't match our records either. For the patient's safety this link "
                "is now locked. Please ask your practice for a new one."
            )
        )
        return ConversationHandler.END
    await message.reply_text(
        _.ngettext(
            "That date doesn't match our records. You have {n} more try.",
            "That date doesn't match our records. You have {n} more tries.",
            result.tries_left,
        ).format(n=result.tries_left)
    )
    return ASK_DOB


async def _finish(
    update: Update,
    context: PortalContext,
    who: Caller,
    invite_id: int,
    date_of_birth: dt.date,
) -> int:
    _ = who._
    message = update.effective_message
    assert message is not None
    context.user_data.pop(INVITE_KEY, None)  # type: ignore[union-attr]
    result = await invitations.sign_in(
        context.portal.db, invite_id, who.telegram_user_id, _.language, date_of_birth
    )
    if result.state is not InviteState.VALID or result.patient is None:
        check = invitations.InviteCheck(result.state)
        await message.reply_text(_refusal(_, result.state, check, context.portal.settings.tz))
        return ConversationHandler.END
    await context.refresh_caller(update)  # signed in now, for the rest of this update
    first = result.patient.full_name.split()[0]
    await message.reply_text(
        _("Welcome, {name}! You're now signed in to your patient portal at {practice}.").format(
            name=esc(first), practice=esc(context.portal.settings.practice_name)
        )
        + "\n\n"
        + _("Send /help at any time to see everything I can do."),
        reply_markup=home_keyboard(_),
    )
    # Cards for requests that waited for this patient to sign in go out now.
    await access.queue_waiting_cards(context.portal.db, result.patient.id, who.telegram_user_id)
    await context.portal.sender.release(patient_id=result.patient.id)
    return ConversationHandler.END


async def cancel_signin(update: Update, context: PortalContext) -> int:
    """/cancel while signing in; the link stays usable."""
    who = context.caller
    context.user_data.pop(INVITE_KEY, None)  # type: ignore[union-attr]
    if update.effective_message:
        await update.effective_message.reply_text(
            who._("Sign-in cancelled. You can open the link again whenever you're ready.")
        )
    return ConversationHandler.END


async def signin_timed_out(update: Update, context: PortalContext) -> int:
    """No answer for ten minutes: say so, keep the link usable."""
    who = context.caller
    context.user_data.pop(INVITE_KEY, None)  # type: ignore[union-attr]
    if update.effective_chat:
        await context.bot.send_message(
            update.effective_chat.id,
            who._("Sign-in timed out. Open the invite link again to continue."),
        )
    return ConversationHandler.END


def signin_conversation(flows: Flows) -> ConversationHandler:  # type: ignore[type-arg]
    start_with_link = CommandHandler("start", open_invite, has_args=True)
    return conversation(
        flows,
        name="signin",
        entry_points=[start_with_link],
        states={
            ASK_DOB: [MessageHandler(filters.TEXT & ~filters.COMMAND, check_dob)],
            ConversationHandler.TIMEOUT: [
                TypeHandler(Update, signin_timed_out),
            ],
        },
        fallbacks=[CommandHandler("cancel", cancel_signin), start_with_link],
        allow_reentry=True,
    )
