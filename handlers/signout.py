"""Unlinking a Telegram account from the portal, for a lost phone or a taken-over account:
/signout by the patient, and the confirmation of a practitioner's /unlink (asked in
conversations/unlink.py). Both ask Yes or No first; every tap is checked again here."""

from __future__ import annotations

import logging

from telegram import Update

from bot import invitations, userstate
from bot.callbacks import KeepLinked, SignOut, StaySignedIn, UnlinkAccount
from bot.context import USER_LANGUAGE_KEY, PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.text import esc
from handlers.guard import require_patient, tapped
from handlers.send import answer_quietly, edit_in_place, send_to_chat

log = logging.getLogger(__name__)


def unlink_buttons(_: Translator, patient_id: int, telegram_user_id: int) -> Keyboard:
    """Yes and No under a practitioner's question whether to unlink this account."""
    return Keyboard(
        [
            [
                Button(
                    _("Yes, sign them out"),
                    data=UnlinkAccount(patient_id, telegram_user_id).encode(),
                ),
                Button(_("No"), data=KeepLinked().encode()),
            ]
        ]
    )


async def ask_to_sign_out(update: Update, context: PortalContext) -> None:
    """/signout: says what signing out does and asks Yes or No."""
    login = context.caller.login
    if await require_patient(update, context) is None or login is None:
        return
    _ = context._
    yes = SignOut(login.patient_id, login.created_at).encode()
    await send_to_chat(
        update,
        _(
            "Sign this Telegram account out of your patient portal?\n\n"
            "Your records, who may access them and the patients you look after stay as they "
            "are. To sign in again, you'll need a new invite link from your practice."
        ),
        Keyboard(
            [
                [
                    Button(_("Yes, sign me out"), data=yes),
                    Button(_("No"), data=StaySignedIn().encode()),
                ]
            ]
        ),
    )


async def sign_out(update: Update, context: PortalContext) -> None:
    """Yes under /signout: only the tapper's own current sign-in can be signed out.

    A signed-out tapper's Yes is a stale button, not a reason to sign in: it is answered
    as one (tests/test_signout.py)."""
    query, data = tapped(update, SignOut)
    who = context.caller
    _ = who._
    done = None
    if who.login is not None:
        done = await invitations.sign_out(
            context.portal.db, who.telegram_user_id, data.patient, data.since
        )
    if done is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await forget_drafts(context, who.telegram_user_id)
    await answer_quietly(query)
    await edit_in_place(
        query,
        _(
            "You're signed out: this Telegram account no longer opens your portal. To sign in "
            "again, ask your practice for a new invite link."
        ),
    )


async def stay_signed_in(update: Update, context: PortalContext) -> None:
    """No under /signout: nothing changes (a stale button once signed out)."""
    query, _data = tapped(update, StaySignedIn)
    _ = context._
    if not context.caller.signed_in:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await answer_quietly(query)
    await edit_in_place(query, _("Nothing changed: you're still signed in."))


async def unlink_account(update: Update, context: PortalContext) -> None:
    """Yes under a practitioner's /unlink: signs that patient's Telegram account out."""
    query, data = tapped(update, UnlinkAccount)
    who = context.caller
    _ = who._
    if not who.is_practitioner:  # read for this update (bot/context.py)
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    done = await invitations.unlink(
        context.portal.db,
        data.patient,
        telegram_user_id=data.telegram_user,
        practitioner_id=who.telegram_user_id,
    )
    await answer_quietly(query)
    if done is None:
        await edit_in_place(
            query, _("Nothing changed: that Telegram account no longer holds this portal.")
        )
        return
    await forget_drafts(context, done.login.telegram_user_id)
    await edit_in_place(
        query,
        _(
            "Done: {name}'s Telegram account is signed out of the portal. To sign in again, "
            "they need a new invite link: send /invite."
        ).format(name=esc(done.patient.full_name)),
    )


async def keep_linked(update: Update, context: PortalContext) -> None:
    """No under a practitioner's /unlink: nothing changes."""
    query, _data = tapped(update, KeepLinked)
    await answer_quietly(query)
    await edit_in_place(query, context._("Cancelled. Nothing changed."))


async def forget_drafts(context: PortalContext, telegram_user_id: int) -> None:
    """Half-finished flows' answers go with the login; the language chosen stays."""
    await userstate.forget(context, telegram_user_id, keep={USER_LANGUAGE_KEY})
