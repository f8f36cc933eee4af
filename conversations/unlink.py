"""/unlink: a practitioner signs a patient's Telegram account out of the portal (a lost
phone, a taken-over account). They type the patient's email or full name; the Yes under
the question is handled, and checked again, in handlers/signout.py."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler, MessageHandler

from bot import invitations
from bot.callbacks import FlowName
from bot.context import PortalContext
from bot.i18n import Translator
from bot.text import clean_email, clean_name, esc
from conversations import END, TYPED, Conversation, Flow, Flows, NoDraft, typed
from handlers.language import practitioner_menu
from handlers.signout import unlink_buttons
from storage.models import Patient

WHO = 0

UNLINKING = Flow(
    "unlink",
    NoDraft,
    said_on_cancel=lambda _: _("Cancelled. Nothing changed."),
    said_on_timeout=lambda _: _("Nobody was signed out: the question timed out."),
    said_mid_flow=lambda _: _("Type the patient's email or full name, or send /cancel to stop."),
    buttons=FlowName.UNLINK,
    in_place=False,
)


async def start_unlink(update: Update, context: PortalContext) -> int:
    """Checks the sender is a practitioner; asks whose account to sign out."""
    who = context.caller
    _ = who._
    if not who.is_practitioner:
        text = _("Sorry, only practitioners of the practice can sign out a patient's account.")
        await UNLINKING.prompt(update, text)
        return END
    await practitioner_menu(context, who)
    text = _(
        "Whose Telegram account should be signed out of the portal? Type the patient's "
        "email or full name."
    )
    await UNLINKING.prompt(update, text, [UNLINKING.nav(_, back=False)])
    return WHO


async def find_patient(update: Update, context: PortalContext) -> int:
    """Looks the patient up; asks to confirm, or to type it again."""
    _ = context.caller._
    email = clean_email(typed(update))
    name = None if email else clean_name(typed(update))
    found = (
        await invitations.find_signed_in(context.portal.db, email=email, name=name)
        if email or name
        else []
    )
    if len(found) != 1:
        text = (
            _("More than one signed-in patient has this name. Please type their email instead.")
            if found
            else _(
                "I can't find a signed-in patient with that email or name. Please check it and "
                "type it again, or tap Cancel."
            )
        )
        await UNLINKING.prompt(update, text, [UNLINKING.nav(_, back=False)])
        return WHO
    patient, login = found[0]
    buttons = unlink_buttons(_, patient.id, login.telegram_user_id)
    await UNLINKING.prompt(update, _question(_, patient), buttons)
    return END


def _question(_: Translator, patient: Patient) -> str:
    """Whom the Yes below would sign out, and what it leaves as it is."""
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
    return "\n".join(lines)


def unlink_conversation(flows: Flows) -> Conversation:
    return UNLINKING.conversation(
        flows,
        entry_points=[CommandHandler("unlink", start_unlink)],
        states={WHO: [MessageHandler(TYPED, find_patient)]},
    )
