"""/activity: the access log of your portal (or a dependent's you hold), newest first."""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot import access, labels
from bot.i18n import Translator
from bot.runtime import caller, portal
from bot.text import esc
from handlers.guard import require_patient
from handlers.menu import CB_HOME_ACTIVITY
from handlers.paging import page_row
from handlers.send import edit_in_place
from storage.models import AuditEvent

_DATA = re.compile(r"^log:(\d{1,18}):(\d{1,6})$")


def _what(_: Translator, e: AuditEvent) -> str:
    """One event in words; details are codes we wrote, never user text."""
    level_role = ""
    if e.detail and "/" in e.detail and ">" not in e.detail:
        level, role = e.detail.split(" ")[0].split("/")
        level_role = labels.access_summary(_, level, role)
    words = {
        "view.appointments": _("viewed appointments"),
        "view.invoices": _("viewed invoices"),
        "view.records": _("viewed clinical records"),
        "view.details": _("viewed details"),
        "appointment.cancelled": _("cancelled an appointment"),
        "appointment.confirmed": _("confirmed an appointment"),
        "appointment.cancel_asked": _("opened an appointment to cancel"),
        "grant.requested": _("asked for access ({access})").format(access=level_role),
        "grant.approved": _("approved access ({access})").format(access=level_role),
        "grant.denied": _("declined a request for access"),
        "grant.revoked": _("revoked access"),
        "grant.left": _("stopped accessing"),
        "grant.withdrawn": _("withdrew a request for access"),
        "grant.changed": _("changed access"),
        "grant.offered": _("offered access ({access})").format(access=level_role),
        "grant.decide": _("tried to decide a request"),
        "signin.ok": _("signed in"),
        "signin.dob_mismatch": _("typed a wrong date of birth"),
        "invite.locked": _("locked an invite link"),
        "invite.created": _("sent an invite link to this portal"),
        "invite.own_login": _("created an own-login link"),
        "patient.dependent_created": _("created this account"),
        "switch": _("tried to switch to this portal"),
        "switch.fallback": _("lost access and was switched back"),
    }
    text = words.get(e.action, e.action)
    if e.outcome == "refused":
        text = _("refused: {what}").format(what=text)
    return text


async def render(
    context: ContextTypes.DEFAULT_TYPE, _: Translator, reader: int, subject: int, number: int
) -> tuple[str, InlineKeyboardMarkup | None] | None:
    p = portal(context)
    page = await access.access_log(p.db, reader, subject, number)
    if page is None:
        return None
    lines = [_("📜 <b>Access log</b>"), ""]
    if not page.events:
        lines.append(_("Nothing yet."))
    for event, actor in page.events:
        stamp = _.when(event.at, p.settings.tz)
        who = esc(actor) if actor else _("The practice")
        lines.append(f"• {stamp} — <b>{who}</b> {_what(_, event)}")
    nav = page_row(_, page, lambda n: f"log:{subject}:{n}")
    return "\n".join(lines), InlineKeyboardMarkup([nav]) if nav else None


async def show_activity(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/activity: your own access log (for a dependent's, use /access)."""
    who = await require_patient(update, context)
    if who is None or who.patient is None:
        return
    message = update.effective_message
    assert message is not None
    if update.callback_query:
        await update.callback_query.answer()
    rendered = await render(context, who._, who.patient.id, who.patient.id, 0)
    assert rendered is not None
    await message.reply_text(rendered[0], reply_markup=rendered[1])


async def turn_log_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ ▶ in a log, or opening a dependent's log: only the subject or holder may read it."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = await caller(update, context)
    match = _DATA.match(query.data)
    rendered = (
        await render(context, who._, who.patient.id, int(match[1]), int(match[2]))
        if match and who.patient
        else None
    )
    if rendered is None:
        await query.answer(
            who._("Only the patient, or the holder of their account, can read this log."),
            show_alert=True,
        )
        return
    await query.answer()
    await edit_in_place(query, rendered[0], rendered[1])


def activity_handlers() -> list[object]:
    return [
        CommandHandler("activity", show_activity),
        CallbackQueryHandler(show_activity, pattern=f"^{CB_HOME_ACTIVITY}$"),
        CallbackQueryHandler(turn_log_page, pattern=r"^log:"),
    ]
