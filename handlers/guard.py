"""What every patient-facing handler checks first: is this Telegram user signed in? One
check, one message, for commands and buttons alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from telegram import CallbackQuery, Update

from bot import access
from bot.access import Viewing
from bot.callbacks import Callback
from bot.context import PortalContext
from bot.i18n import Translator
from storage.models import Patient

K = TypeVar("K", bound=Callback)


async def require_patient(update: Update, context: PortalContext) -> Patient | None:
    """The signed-in patient; otherwise None, once they are told how to sign in."""
    patient = context.caller.patient
    if patient is None:
        await tell_to_sign_in(update, context._)
    return patient


async def require_viewing(update: Update, context: PortalContext) -> Viewing | None:
    """The portal the signed-in patient is looking at now; otherwise None, once they are
    told how to sign in (also when their login went a moment ago)."""
    caller = context.caller
    view = (
        await access.viewing(context.portal.db, caller.telegram_user_id)
        if caller.signed_in
        else None
    )
    if view is None:
        await tell_to_sign_in(update, context._)
    return view


async def tell_to_sign_in(update: Update, _: Translator) -> None:
    """A tap gets an alert (the message it was on stays as it was); a message, a reply."""
    text = _("Please sign in first: open the invite link your practice sent you.")
    if update.callback_query:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message:
        await update.effective_message.reply_text(text)


@dataclass(frozen=True)
class Tap(Generic[K]):
    """A button tapped by a signed-in patient: the query, its data, and who they are."""

    query: CallbackQuery
    data: K
    me: Patient


def tapped(update: Update, kind: type[K]) -> tuple[CallbackQuery, K]:
    """The tap and its data as `kind`, for a handler registered with kind.pattern()."""
    query = update.callback_query
    assert query is not None
    data = kind.parse(query.data)
    assert data is not None, "registered with the kind's own pattern"
    return query, data


async def patient_tap(update: Update, context: PortalContext, kind: type[K]) -> Tap[K] | None:
    """The tap, its data as `kind` and the signed-in patient; otherwise None, once they are
    told how to sign in."""
    query, data = tapped(update, kind)
    me = await require_patient(update, context)
    return Tap(query, data, me) if me is not None else None
