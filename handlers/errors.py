"""The one error handler: a kind message for the user, a useful (and private) line in the log."""

from __future__ import annotations

import logging

from telegram import Update

from bot.context import PortalContext
from bot.i18n import translator
from bot.portalbot import answered_here
from storage.db import StorageUnavailable, committed_here

log = logging.getLogger("portal.errors")


async def report_error(update: object, context: PortalContext) -> None:
    """Log the exception without user content; tell the user whether anything changed."""
    update_id = update.update_id if isinstance(update, Update) else None
    # Only the exception type and traceback: messages of our own exceptions never carry
    # user data, and the update itself (names, dates of birth) is deliberately not logged.
    log.error("error handling update %s", update_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if isinstance(context.error, StorageUnavailable):
            # Nothing can be looked up: not even the caller's chosen language.
            user = update.effective_user
            _ = translator(
                user.language_code if user else None, context.portal.settings.default_locale
            )
            await _tell(
                update, _("I can't reach my records right now. Please try again in a moment.")
            )
            return
        # A new context: the one the handlers had is not passed to the error handler.
        who = await context.refresh_caller(update)
        if committed_here():  # "nothing was changed" would be false
            text = who._(
                "Something went wrong after your change was saved. "
                "Send /start to see where things stand."
            )
        else:
            text = who._("Something went wrong; nothing was changed. Please try again.")
        await _tell(update, text)
    except Exception:  # the error path must never raise
        log.exception("could not tell the user about update %s", update_id)


async def _tell(update: Update, text: str) -> None:
    query = update.callback_query
    if query and not answered_here(query.id):
        await query.answer(text, show_alert=True)
    elif update.effective_message:
        await update.effective_message.reply_text(text)
