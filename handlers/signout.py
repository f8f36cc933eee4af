"""Unlinking a Telegram account from the portal, for a lost phone or a taken-over account:
/signout by the patient, and the confirmation of a practitioner's /unlink (asked in
conversations/unlink.py). Both ask Yes or No first; every tap is checked again here."""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import invitations
from bot.context import USER_LANGUAGE_KEY, PortalApp, PortalContext
from bot.i18n import Translator
from bot.text import esc
from handlers.guard import require_patient
from handlers.send import edit_in_place

log = logging.getLogger(__name__)

CB_SIGN_OUT_NO = "so:n"
CB_UNLINK_NO = "unl:n"
# so:y:<patient id>:<time of the sign-in>: the confirmation holds for that one sign-in.
_SIGN_OUT = re.compile(r"^so:y:(\d{1,18}):(\d{1,12})$")
# unl:y:<patient id>:<Telegram user id>: only while that account still holds the portal.
_UNLINK = re.compile(r"^unl:y:(\d{1,18}):(\d{1,18})$")


def unlink_buttons(_: Translator, patient_id: int, telegram_user_id: int) -> InlineKeyboardMarkup:
    """Yes and No under a practitioner's question whether to unlink this account."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("Yes, sign them out"), callback_data=f"unl:y:{patient_id}:{telegram_user_id}"
                ),
                InlineKeyboardButton(_("No"), callback_data=CB_UNLINK_NO),
            ]
        ]
    )


async def ask_to_sign_out(update: Update, context: PortalContext) -> None:
    """/signout: says what signing out does and asks Yes or No."""
    who = await require_patient(update, context)
    if who is None or who.login is None:
        return
    _ = who._
    login = who.login
    yes = f"so:y:{login.patient_id}:{login.created_at}"
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _(
            "Sign this Telegram account out of your patient portal?\n\n"
            "Your records, who may access them and the patients you look after stay as they "
            "are. To sign in again, you'll need a new invite link from your practice."
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(_("Yes, sign me out"), callback_data=yes),
                    InlineKeyboardButton(_("No"), callback_data=CB_SIGN_OUT_NO),
                ]
            ]
        ),
    )


async def sign_out(update: Update, context: PortalContext) -> None:
    """Yes under /signout: only the tapper's own current sign-in can be signed out."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _SIGN_OUT.match(query.data)
    done = None
    if match and who.login is not None:
        done = await invitations.sign_out(
            context.portal.db, who.telegram_user_id, int(match[1]), int(match[2])
        )
    if done is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    forget_drafts(context.application, who.telegram_user_id)
    await query.answer()
    await edit_in_place(
        query,
        _(
            "You're signed out: this Telegram account no longer opens your portal. To sign in "
            "again, ask your practice for a new invite link."
        ),
    )


async def stay_signed_in(update: Update, context: PortalContext) -> None:
    """No under /signout: nothing changes."""
    query = update.callback_query
    assert query is not None
    who = context.caller
    if not who.signed_in:
        await query.answer(who._("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_in_place(query, who._("Nothing changed: you're still signed in."))


async def unlink_patient(update: Update, context: PortalContext) -> None:
    """Yes under a practitioner's /unlink: signs that patient's Telegram account out."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _UNLINK.match(query.data)
    if not who.is_practitioner or match is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    p = context.portal
    done = await invitations.unlink(
        p.db,
        int(match[1]),
        telegram_user_id=int(match[2]),
        practitioner_id=who.telegram_user_id,
    )
    await query.answer()
    if done is None:
        await edit_in_place(
            query, _("Nothing changed: that Telegram account no longer holds this portal.")
        )
        return
    forget_drafts(context.application, done.login.telegram_user_id)
    await edit_in_place(
        query,
        _(
            "Done: {name}'s Telegram account is signed out of the portal. To sign in again, "
            "they need a new invite link: send /invite."
        ).format(name=esc(done.patient.full_name)),
    )


async def keep_linked(update: Update, context: PortalContext) -> None:
    """No under a practitioner's /unlink: nothing changes."""
    query = update.callback_query
    assert query is not None
    who = context.caller
    await query.answer()
    await edit_in_place(query, who._("Cancelled. Nothing changed."))


def forget_drafts(app: PortalApp, telegram_user_id: int) -> None:
    """Half-finished flows' answers go with the login; the language chosen stays."""
    data = app.user_data.get(telegram_user_id)
    if not data:
        return
    language = data.get(USER_LANGUAGE_KEY)
    data.clear()
    if language is not None:
        data[USER_LANGUAGE_KEY] = language
    app.mark_data_for_update_persistence(user_ids=telegram_user_id)


def signout_handlers() -> list[object]:
    return [
        CommandHandler("signout", ask_to_sign_out),
        CallbackQueryHandler(sign_out, pattern=r"^so:y:"),
        CallbackQueryHandler(stay_signed_in, pattern=f"^{CB_SIGN_OUT_NO}$"),
        CallbackQueryHandler(unlink_patient, pattern=r"^unl:y:"),
        CallbackQueryHandler(keep_linked, pattern=f"^{CB_UNLINK_NO}$"),
    ]
