"""/start without a link, /help, and what to say to anything the bot does not expect."""

from __future__ import annotations

from telegram import Update

from bot import access, records
from bot.callbacks import TurnHomePage
from bot.context import Caller, PortalContext
from bot.keyboards import Keyboard
from bot.text import esc
from handlers.guard import patient_tap
from handlers.language import practitioner_menu
from handlers.menu import HOME_PAGE_SIZE, help_text, home_keyboard, home_text
from handlers.send import answer_quietly, edit_in_place, send_to_chat
from handlers.views import header


async def show_home(update: Update, context: PortalContext) -> None:
    """/start: the home menu when signed in, otherwise how to get in."""
    who = context.caller
    _ = who._
    message = update.effective_message
    if message is None:
        return
    await practitioner_menu(context, who)
    if who.patient is not None:
        text, markup = await _home(context, who, 0)
        await send_to_chat(update, text, markup)
        return
    practice = esc(context.portal.settings.practice_name)
    text = _(
        "Hello! I'm the patient assistant of {practice}. To sign in, open the invite link "
        "your practice sent you. No link yet? Ask the reception for one."
    ).format(practice=practice)
    if who.is_practitioner:
        text += "\n\n" + _("You're registered as a practitioner: send /invite to invite a patient.")
    await message.reply_text(text)


async def turn_home_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ under the patients on the home message: that page, in place."""
    tap = await patient_tap(update, context, TurnHomePage)
    if tap is None:
        return
    await answer_quietly(tap.query)
    text, markup = await _home(context, context.caller, tap.data.page)
    await edit_in_place(tap.query, text, markup)


async def _home(context: PortalContext, who: Caller, number: int) -> tuple[str, Keyboard]:
    """The home message with page `number` of the patients this patient accesses."""
    assert who.patient is not None
    _ = who._
    p = context.portal
    entries = await access.accessible(p.db, who.patient.id)
    view = await access.viewing(p.db, who.telegram_user_id)
    page = records.page_of(entries, number, HOME_PAGE_SIZE)
    text = home_text(who, page, len(entries))
    if view is not None:
        text = header(_, view) + "\n\n" + text
    return text, home_keyboard(_, page)


async def show_help(update: Update, context: PortalContext) -> None:
    """/help: the commands this user can use."""
    who = context.caller
    if update.effective_message:
        await update.effective_message.reply_text(help_text(who))


async def nothing_to_cancel(update: Update, context: PortalContext) -> None:
    """/cancel outside a conversation."""
    who = context.caller
    if update.effective_message:
        await update.effective_message.reply_text(
            who._("There's nothing to cancel. Send /help to see what I can do.")
        )


async def not_understood(update: Update, context: PortalContext) -> None:
    """Text or an unknown command outside any conversation."""
    who = context.caller
    if update.effective_message:
        await update.effective_message.reply_text(
            who._("Sorry, I didn't understand that. Send /help to see what I can do.")
        )


async def stale_button(update: Update, context: PortalContext) -> None:
    """A button no handler claims: old, from a finished conversation, or forged."""
    who = context.caller
    if update.callback_query:
        await answer_quietly(
            update.callback_query, who._("This button is no longer active."), alert=True
        )
