"""What every patient-facing handler checks first: is this Telegram user signed in?"""

from __future__ import annotations

from telegram import Update

from bot.context import Caller, PortalContext
from bot.i18n import Translator


async def require_patient(update: Update, context: PortalContext) -> Caller | None:
    """The caller when signed in to a portal; otherwise they are told how to sign in."""
    who = context.caller
    if who.signed_in:
        return who
    await tell_to_sign_in(update, who._)
    return None


async def tell_to_sign_in(update: Update, _: Translator) -> None:
    """A tap gets an alert (the message it was on stays as it was); a message, a reply."""
    text = _("Please sign in first: open the invite link your practice sent you.")
    if update.callback_query:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message:
        await update.effective_message.reply_text(text)
