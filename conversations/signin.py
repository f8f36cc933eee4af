"""Signing in from a practitioner's invite link: /start <token>, then the date of birth."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import model_validator
from telegram import Update
from telegram.ext import CommandHandler, MessageHandler

from bot import access, invitations
from bot.context import PortalContext
from bot.dates import parse_date
from bot.i18n import Translator
from bot.invitations import InviteCheck, InviteState
from bot.text import esc
from conversations import END, TYPED, Conversation, Draft, Flow, Flows, Handler, typed
from handlers.menu import home_keyboard

log = logging.getLogger(__name__)

ASK_DOB = 0


class SigningIn(Draft):
    """The invite whose date of birth is being asked."""

    invite_id: int

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, stored: Any) -> Any:
        """The previous version stored the invite's id alone."""
        return {"invite_id": stored} if isinstance(stored, int) else stored


SIGNING_IN = Flow(
    "signin",
    SigningIn,
    said_on_cancel=lambda _: _(
        "Sign-in cancelled. You can open the link again whenever you're ready."
    ),
    said_on_timeout=lambda _: _("Sign-in timed out. Open the invite link again to continue."),
    draft_key="signin_invite_id",  # the previous version's name: its drafts load
)


def _refusal(_: Translator, check: InviteCheck, tz: dt.tzinfo) -> str:
    """Why this link cannot sign this Telegram account in, and what to do."""
    ask = _("Please ask your practice for a new invite link.")
    if check.state is InviteState.EXPIRED and check.invite is not None:
        until = _.day_of(check.invite.expires_at, tz)
        return _("This invite link expired on {date}.").format(date=until) + " " + ask
    if check.state is InviteState.HAS_OTHER_PORTAL:
        return _(
            "This Telegram account is already signed in to a portal, and one account can hold "
            "only one portal. To manage someone else's records, send /start and add them as a "
            "patient you access."
        )
    if check.state is InviteState.PORTAL_TAKEN:
        return _(
            "This portal is already connected to another Telegram account. If that isn't you, "
            "please contact your practice."
        )
    reason = _why_not(_).get(check.state)
    return f"{reason} {ask}" if reason else ask


def _why_not(_: Translator) -> dict[InviteState, str]:
    """What is wrong with a link that a new one would put right."""
    unknown = _("I don't recognise this link. It may have been copied incompletely.")
    return {
        InviteState.MALFORMED: unknown,
        InviteState.UNKNOWN: unknown,
        InviteState.USED: _("This invite link has already been used."),
        InviteState.BURNED: _(
            "This invite link is no longer valid: it was posted in a group chat, "
            "where others could see it."
        ),
        InviteState.LOCKED: _(
            "This invite link was locked after too many wrong dates of birth, "
            "to protect the patient."
        ),
        InviteState.NO_DATE_OF_BIRTH: _(
            "This invite link has no date of birth to check, so it can't be used safely."
        ),
    }


async def open_invite(update: Update, context: PortalContext) -> int:
    """Checks the link from /start <token>; asks the date of birth."""
    who = context.caller
    _ = who._
    payload = (context.args or [""])[0]
    check = await invitations.check_invite(context.portal.db, payload, who.telegram_user_id)
    if check.state is InviteState.SIGNED_IN_ALREADY:
        text = _("You're already signed in. Here is your menu.")
        await SIGNING_IN.prompt(update, text, home_keyboard(_))
        return END
    if check.state is not InviteState.VALID or check.invite is None or check.patient is None:
        await SIGNING_IN.prompt(update, _refusal(_, check, context.portal.settings.tz))
        return END
    # Always: a link must never sign anyone in without the date of birth it checks.
    SIGNING_IN.begin(context, SigningIn(invite_id=check.invite.id))
    text = _(
        "Welcome! To keep your records safe, please type your date of birth "
        "(for example {example})."
    )
    await SIGNING_IN.prompt(update, text.format(example=_.date_example()))
    return ASK_DOB


async def check_dob(update: Update, context: PortalContext) -> int:
    """Compares the typed date of birth; signs in, re-asks, or ends on the third miss."""
    _ = context.caller._
    draft = SIGNING_IN.draft(context)
    if draft is None:
        return await SIGNING_IN.lost(update, context)
    answer = parse_date(typed(update) or "", _.format_locale)
    if answer is None:
        text = _("I couldn't read that as a date. Please type it like {example}.")
        await SIGNING_IN.prompt(update, text.format(example=_.date_example()))
        return ASK_DOB
    result = await invitations.check_date_of_birth(
        context.portal.db, draft.invite_id, answer, context.caller.telegram_user_id
    )
    if result.matches and not result.burned:
        return await _sign_in(update, context, draft.invite_id, answer)
    return await _missed(update, context, result)


async def _missed(update: Update, context: PortalContext, result: invitations.DobCheck) -> int:
    """Not signed in: the link was burned meanwhile, is now locked, or has tries left."""
    _ = context.caller._
    if result.burned:
        SIGNING_IN.drop(context)
        check = InviteCheck(InviteState.BURNED)
        await SIGNING_IN.prompt(update, _refusal(_, check, context.portal.settings.tz))
        return END
    if result.locked:
        SIGNING_IN.drop(context)
        text = _(
            "That date doesn't match our records either. For the patient's safety this link "
            "is now locked. Please ask your practice for a new one."
        )
        await SIGNING_IN.prompt(update, text)
        return END
    text = _.ngettext(
        "That date doesn't match our records. You have {n} more try.",
        "That date doesn't match our records. You have {n} more tries.",
        result.tries_left,
    )
    await SIGNING_IN.prompt(update, text.format(n=result.tries_left))
    return ASK_DOB


async def _sign_in(
    update: Update, context: PortalContext, invite_id: int, date_of_birth: dt.date
) -> int:
    """The date matches: signs in, welcomes, and sends what waited for this patient."""
    who = context.caller
    _ = who._
    SIGNING_IN.drop(context)
    p = context.portal
    result = await invitations.sign_in(
        p.db, invite_id, who.telegram_user_id, _.language, date_of_birth
    )
    if result.state is not InviteState.VALID or result.patient is None:
        check = InviteCheck(result.state)
        await SIGNING_IN.prompt(update, _refusal(_, check, p.settings.tz))
        return END
    await context.refresh_caller(update)  # signed in now, for the rest of this update
    first = result.patient.full_name.split()[0]
    text = (
        _("Welcome, {name}! You're now signed in to your patient portal at {practice}.").format(
            name=esc(first), practice=esc(p.settings.practice_name)
        )
        + "\n\n"
        + _("Send /help at any time to see everything I can do.")
    )
    await SIGNING_IN.prompt(update, text, home_keyboard(_))
    # Cards for requests that waited for this patient to sign in go out now.
    await access.queue_waiting_cards(p.db, result.patient.id, who.telegram_user_id)
    await p.sender.release(patient_id=result.patient.id)
    return END


def signin_conversation(flows: Flows) -> Conversation:
    start_with_link: Handler = CommandHandler("start", open_invite, has_args=True)
    return SIGNING_IN.conversation(
        flows,
        entry_points=[start_with_link],
        states={ASK_DOB: [MessageHandler(TYPED, check_dob)]},
        fallbacks=[start_with_link],
    )
