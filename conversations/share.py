"""Share a dependent you hold with another patient: their email, the access, one Confirm.
They get Accept / Decline; the reply to you is the same whatever the email."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import access, labels
from bot.context import PortalContext
from bot.i18n import Translator
from bot.text import clean_email, esc
from conversations import Flows, conversation
from handlers.choices import level_question, role_question
from handlers.send import edit_in_place, keyboard
from storage.vocabulary import Level, Role

EMAIL, LEVEL, ROLE, CONFIRM = range(4)
DRAFT = "share"
CB_CANCEL = "sh:cancel"


def _draft(context: PortalContext) -> dict[str, Any]:
    return context.user_data.setdefault(DRAFT, {})  # type: ignore[union-attr,no-any-return]


def _cancel_row(_: Translator) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(_("Cancel"), callback_data=CB_CANCEL)]


async def _say(update: Update, text: str, rows: list[list[InlineKeyboardButton]]) -> None:
    markup = keyboard(rows)
    query = update.callback_query
    if query is not None:
        await query.answer()
        await edit_in_place(query, text, markup)
        return
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, reply_markup=markup)


async def start_sharing(update: Update, context: PortalContext) -> int:
    """'Share <name> with someone': checks you hold them; asks the other patient's email."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    dependent_id = (
        int(query.data.rsplit(":", 1)[1]) if query.data.rsplit(":", 1)[1].isdigit() else 0
    )
    dependent = (
        await access.held_dependent(context.portal.db, who.patient.id, dependent_id)
        if who.patient
        else None
    )
    if dependent is None:
        await query.answer(_("You no longer hold this account."), show_alert=True)
        return ConversationHandler.END
    context.user_data[DRAFT] = {"dependent": dependent.id, "name": dependent.full_name}  # type: ignore[index]
    await _say(
        update,
        _("Share {name} with another patient. What email does their portal login use?").format(
            name=esc(dependent.full_name)
        ),
        [_cancel_row(_)],
    )
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; asks the access level."""
    _ = (context.caller)._
    email = clean_email(update.effective_message.text if update.effective_message else None)
    if email is None:
        await _say(
            update,
            _("That doesn't look like an email address. Please check it and type it again."),
            [_cancel_row(_)],
        )
        return EMAIL
    _draft(context)["email"] = email
    text, choices = level_question(_, _("Which access should they have?"), "sh:lvl:")
    await _say(update, text, [choices, _cancel_row(_)])
    return LEVEL


async def save_level(update: Update, context: PortalContext) -> int:
    """Stores the level; asks the role."""
    _ = (context.caller)._
    query = update.callback_query
    assert query is not None and query.data is not None
    _draft(context)["level"] = Level.CLINICAL if query.data.endswith(":c") else Level.ADMINISTRATIVE
    text, choices = role_question(_, _("What may they do?"), "sh:role:")
    await _say(update, text, [choices, _cancel_row(_)])
    return ROLE


async def save_role(update: Update, context: PortalContext) -> int:
    """Stores the role; shows the summary with Confirm."""
    _ = (context.caller)._
    query = update.callback_query
    assert query is not None and query.data is not None
    draft = _draft(context)
    draft["role"] = Role.EDIT if query.data.endswith(":e") else Role.VIEW
    text = _("Offer access to <b>{name}</b> ({access}) to the portal login {email}?").format(
        name=esc(draft["name"]),
        access=labels.access_summary(_, draft["level"], draft["role"]),
        email=esc(draft["email"]),
    )
    rows = [[InlineKeyboardButton(_("✅ Confirm"), callback_data="sh:ok")], _cancel_row(_)]
    await _say(update, text, rows)
    return CONFIRM


async def confirm_share(update: Update, context: PortalContext) -> int:
    """Creates the offer (if that email has a portal) and tells the same either way."""
    who = context.caller
    _ = who._
    draft = context.user_data.pop(DRAFT, {})  # type: ignore[union-attr]
    p = context.portal
    if who.patient is None or "role" not in draft:
        await _say(update, _("This button is no longer active."), [])
        return ConversationHandler.END
    await access.offer_by_email(
        p.db,
        who.patient.id,
        draft["dependent"],
        draft["email"],
        Level(draft["level"]),
        Role(draft["role"]),
        p.settings.invite_ttl_days,
    )
    await _say(
        update,
        _(
            "Thank you. If this email belongs to a portal account, its owner has been asked to "
            "accept. I'll let you know when they decide."
        ),
        [],
    )
    return ConversationHandler.END


async def cancel_sharing(update: Update, context: PortalContext) -> int:
    """/cancel or Cancel: nothing is offered."""
    _ = (context.caller)._
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    await _say(update, _("Cancelled. Nothing was sent."), [])
    return ConversationHandler.END


async def sharing_timed_out(update: Update, context: PortalContext) -> int:
    """Ten minutes without an answer: nothing is offered."""
    _ = (context.caller)._
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    if update.effective_chat:
        await context.bot.send_message(
            update.effective_chat.id, _("Sharing timed out. Nothing was sent.")
        )
    return ConversationHandler.END


def share_conversation(flows: Flows) -> ConversationHandler:  # type: ignore[type-arg]
    typed = filters.TEXT & ~filters.COMMAND
    return conversation(
        flows,
        name="share",
        entry_points=[CallbackQueryHandler(start_sharing, pattern=r"^sh:start:\d{1,18}$")],
        states={
            EMAIL: [MessageHandler(typed, save_email)],
            LEVEL: [CallbackQueryHandler(save_level, pattern=r"^sh:lvl:[ca]$")],
            ROLE: [CallbackQueryHandler(save_role, pattern=r"^sh:role:[ve]$")],
            CONFIRM: [CallbackQueryHandler(confirm_share, pattern=r"^sh:ok$")],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, sharing_timed_out)],
        },
        fallbacks=[
            CommandHandler("cancel", cancel_sharing),
            CallbackQueryHandler(cancel_sharing, pattern=f"^{CB_CANCEL}$"),
        ],
        allow_reentry=True,
    )
