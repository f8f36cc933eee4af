"""/start without a link, /help, and what to say to anything the bot does not expect."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import access
from bot.runtime import caller, portal
from bot.text import esc
from handlers.language import practitioner_menu
from handlers.menu import help_text, home_keyboard, home_text
from handlers.send import answer_quietly
from handlers.views import header


async def show_home(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: the home menu when signed in, otherwise how to get in."""
    who = await caller(update, context)
    _ = who._
    message = update.effective_message
    if message is None:
        return
    await practitioner_menu(context, who)
    if who.patient is not None:
        p = portal(context)
        entries = await access.accessible(p.db, who.patient.id)
        view = await access.viewing(p.db, who.telegram_user_id)
        text = home_text(who, entries)
        if view is not None:
            text = header(_, view) + "\n\n" + text
        await message.reply_text(text, reply_markup=home_keyboard(_))
        return
    practice = esc(portal(context).settings.practice_name)
    text = _(
        "Hello! I'm the patient assistant of {practice}. To sign in, open the invite link "
        "your practice sent you. No link yet? Ask the reception for one."
    ).format(practice=practice)
    if who.is_practitioner:
        text += "\n\n" + _("You're registered as a practitioner: send /invite to invite a patient.")
    await message.reply_text(text)


async def show_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: the commands this user can use."""
    who = await caller(update, context)
    if update.effective_message:
        await update.effective_message.reply_text(help_text(who))


async def nothing_to_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel outside a conversation."""
    who = await caller(update, context)
    if update.effective_message:
        await update.effective_message.reply_text(
            who._("There's nothing to cancel. Send /help to see what I can do.")
        )


async def not_understood(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text or an unknown command outside any conversation."""
    who = await caller(update, context)
    if update.effective_message:
        await update.effective_message.reply_text(
            who._("Sorry, I didn't understand that. Send /help to see what I can do.")
        )


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button no handler claims: old, from a finished conversation, or forged."""
    who = await caller(update, context)
    if update.callback_query:
        await answer_quietly(
            update.callback_query, who._("This button is no longer active."), alert=True
        )
