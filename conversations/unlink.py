"""/unlink: a practitioner signs a patient's Telegram account out of the portal (a lost
phone, a taken-over account). They type the patient's email or full name; the Yes under
the question is handled, and checked again, in handlers/signout.py."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import invitations
from bot.context import PortalContext
from bot.i18n import Translator
from bot.text import clean_email, clean_name, esc
from conversations import Flows, conversation
from handlers.language import practitioner_menu
from handlers.signout import unlink_buttons

WHO = 0
CB_CANCEL = "unl:cancel"


def _cancel_button(_: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("Cancel"), callback_data=CB_CANCEL)]])


async def start_unlink(update: Update, context: PortalContext) -> int:
    """Checks the sender is a practitioner; asks whose account to sign out."""
    who = context.caller
    _ = who._
    assert update.effective_message is not None
    if not who.is_practitioner:
        await update.effective_message.reply_text(
            _("Sorry, only practitioners of the practice can sign out a patient's account.")
        )
        return ConversationHandler.END
    await practitioner_menu(context, who)
    await update.effective_message.reply_text(
        _(
            "Whose Telegram account should be signed out of the portal? Type the patient's "
            "email or full name."
        ),
        reply_markup=_cancel_button(_),
    )
    return WHO


async def find_patient(update: Update, context: PortalContext) -> int:
    """Looks the patient up; asks to confirm, or to type it again."""
    _ = (context.caller)._
    message = update.effective_message
    assert message is not None
    email = clean_email(message.text)
    name = None if email else clean_name(message.text)
    found = (
        await invitations.find_signed_in(context.portal.db, email=email, name=name)
        if email or name
        else []
    )
    if len(found) > 1:
        await message.reply_text(
            _("More than one signed-in patient has this name. Please type their email instead."),
            reply_markup=_cancel_button(_),
        )
        return WHO
    if not found:
        await message.reply_text(
            _(
                "I can't find a signed-in patient with that email or name. Please check it and "
                "type it again, or tap Cancel."
            ),
            reply_markup=_cancel_button(_),
        )
        return WHO
    patient, login = found[0]
    lines = [
        _("Sign <b>{name}</b> out of the portal on Telegram?").format(name=esc(patient.full_name))
    ]
    if patient.date_of_birth:
        lines.append(_("Born: {date}").format(date=_.date(patient.date_of_birth)))
    if patient.email:
        lines.append(_("Email: {email}").format(email=esc(patient.email)))
    lines += [
        "",
        _(
            "Their records, who may access them and the patients they look after stay as they "
            "are. I'll tell them, and to sign in again they'll need a new invite link."
        ),
    ]
    await message.reply_text(
        "\n".join(lines), reply_markup=unlink_buttons(_, patient.id, login.telegram_user_id)
    )
    return ConversationHandler.END


async def cancel_unlink(update: Update, context: PortalContext) -> int:
    """/cancel or the Cancel button: nothing changes."""
    _ = (context.caller)._
    if update.callback_query:
        await update.callback_query.answer()
        await update.callback_query.edit_message_reply_markup(None)
    assert update.effective_message is not None
    await update.effective_message.reply_text(_("Cancelled. Nothing changed."))
    return ConversationHandler.END


async def command_mid_flow(update: Update, context: PortalContext) -> None:
    """Another command while asked whom to sign out: says how to go on or stop."""
    _ = (context.caller)._
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _("Type the patient's email or full name, or send /cancel to stop.")
    )


async def unlink_timed_out(update: Update, context: PortalContext) -> int:
    """Ten minutes without an answer: nothing changed."""
    _ = (context.caller)._
    if update.effective_chat:
        await context.bot.send_message(
            update.effective_chat.id, _("Nobody was signed out: the question timed out.")
        )
    return ConversationHandler.END


def unlink_conversation(flows: Flows) -> ConversationHandler:  # type: ignore[type-arg]
    return conversation(
        flows,
        name="unlink",
        entry_points=[CommandHandler("unlink", start_unlink)],
        states={
            WHO: [MessageHandler(filters.TEXT & ~filters.COMMAND, find_patient)],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, unlink_timed_out)],
        },
        fallbacks=[
            CommandHandler("cancel", cancel_unlink),
            CallbackQueryHandler(cancel_unlink, pattern=f"^{CB_CANCEL}$"),
            MessageHandler(filters.COMMAND, command_mid_flow),
        ],
        allow_reentry=True,
    )
