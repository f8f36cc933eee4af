"""Access requests arriving as messages with one-tap Approve / Deny / Approve with changes.

Every tap is re-checked by bot.access against the database: who is tapping, whether they
decide for that patient, whether the request is still pending. Callback data only names
the request; it never carries authority.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot import access, labels
from bot.access import DecisionOutcome, Level, Role
from bot.i18n import Translator
from bot.runtime import caller, portal, recipient_translator
from bot.text import esc
from handlers.send import edit_in_place
from storage.models import Grant

log = logging.getLogger(__name__)

CB_PREFIX = "ap"
# ap:ok:<id> approve · ap:no:<id> deny · ap:chg:<id> show lower options ·
# ap:ok:<id>:<level><role> approve lowered (e.g. av = administrative, view) · ap:back:<id>
PATTERN = re.compile(r"^ap:(ok|no|chg|back):(\d{1,18})(?::([ac])([ve]))?$")
_LEVEL_CODE = {"a": Level.ADMINISTRATIVE, "c": Level.CLINICAL}
_ROLE_CODE = {"v": Role.VIEW, "e": Role.EDIT}


def _code(level: Level, role: Role) -> str:
    return level.value[0] + role.value[0]


def card_text(_: Translator, info: access.RequestInfo, tz: dt.tzinfo) -> str:
    grant = info.grant
    as_holder = info.decider_id is not None and info.decider_id != info.subject.id
    if grant.kind == "offer":
        head = _("<b>{holder}</b> offers you access to the portal of <b>{subject}</b>.").format(
            holder=esc(info.offerer.full_name if info.offerer else ""),
            subject=esc(info.subject.full_name),
        )
    elif as_holder:
        head = _(
            "<b>{requester}</b> asks to access the portal of <b>{subject}</b>, "
            "whose account you hold."
        ).format(requester=esc(info.requester.full_name), subject=esc(info.subject.full_name))
    else:
        head = _("<b>{requester}</b> asks to access your patient portal.").format(
            requester=esc(info.requester.full_name)
        )
    lines = [
        head,
        "",
        _("Relationship: {relationship}").format(
            relationship=esc(labels.grant_relationship(_, grant))
        ),
        _("Access: {level} — {explained}").format(
            level=labels.level(_, grant.level), explained=labels.level_explained(_, grant.level)
        ),
        _("Role: {role} — {explained}").format(
            role=labels.role(_, grant.role), explained=labels.role_explained(_, grant.role)
        ),
    ]
    if grant.expires_at:
        until = dt.datetime.fromtimestamp(grant.expires_at, tz).date()
        lines += ["", _("Please decide by {date}.").format(date=_.date(until))]
    return "\n".join(lines)


def card_buttons(_: Translator, grant_id: int, kind: str = "request") -> InlineKeyboardMarkup:
    if kind == "offer":
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(_("✅ Accept"), callback_data=f"ap:ok:{grant_id}"),
                    InlineKeyboardButton(_("❌ Decline"), callback_data=f"ap:no:{grant_id}"),
                ]
            ]
        )
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("✅ Approve"), callback_data=f"ap:ok:{grant_id}"),
                InlineKeyboardButton(_("❌ Deny"), callback_data=f"ap:no:{grant_id}"),
            ],
            [InlineKeyboardButton(_("Approve with changes…"), callback_data=f"ap:chg:{grant_id}")],
        ]
    )


def _lower_options(_: Translator, grant_id: int, level: Level, role: Role) -> InlineKeyboardMarkup:
    rows = []
    for lv in (Level.CLINICAL, Level.ADMINISTRATIVE):
        for rl in (Role.EDIT, Role.VIEW):
            if (lv, rl) != (level, role) and access.not_more_than(lv, rl, level, role):
                rows.append(
                    [
                        InlineKeyboardButton(
                            _("Approve as {access}").format(
                                access=labels.access_summary(_, lv, rl)
                            ),
                            callback_data=f"ap:ok:{grant_id}:{_code(lv, rl)}",
                        )
                    ]
                )
    rows.append([InlineKeyboardButton(_("◀ Back"), callback_data=f"ap:back:{grant_id}")])
    return InlineKeyboardMarkup(rows)


async def send_request(context: ContextTypes.DEFAULT_TYPE, grant_id: int) -> bool:
    """Deliver one pending request to whoever decides it. False if they can't be reached now;
    the request then stays pending and is shown on their next visit."""
    p = portal(context)
    info = await access.request_info(p.db, grant_id)
    if info is None or info.decider_id is None or info.grant.status != "pending":
        return False
    chat_id = await access.telegram_id_of(p.db, info.decider_id)
    if chat_id is None:
        return False
    _ = await recipient_translator(context, info.decider_id)
    try:
        await context.bot.send_message(
            chat_id,
            card_text(_, info, p.settings.tz),
            reply_markup=card_buttons(_, grant_id, info.grant.kind),
        )
    except Forbidden:
        log.info("request %s not delivered: the recipient blocked the bot", grant_id)
        return False
    await access.mark_delivered(p.db, grant_id)
    return True


async def deliver_waiting(context: ContextTypes.DEFAULT_TYPE, patient_id: int) -> int:
    """Requests that could not reach this patient before (not signed in, or blocked us)."""
    sent = 0
    for grant_id in await access.waiting_for(portal(context).db, patient_id, only_undelivered=True):
        sent += await send_request(context, grant_id)
    return sent


async def decide_request(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A tap on Approve, Deny, Approve with changes, a lowered option, or Back."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = await caller(update, context)
    _ = who._
    match = PATTERN.match(query.data)
    if match is None or who.patient is None:
        await query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    verb, grant_id = match[1], int(match[2])
    p = portal(context)
    info = await access.request_info(p.db, grant_id)
    if info is None or info.decider_id != who.patient.id:
        await access.record_refusal(p.db, who.patient.id, grant_id)
        await query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    if verb in ("chg", "back"):
        await query.answer()
        if info.grant.status != "pending":
            await _show_outcome(query, _, info, p.settings.tz)
            return
        markup = (
            _lower_options(_, grant_id, Level(info.grant.level), Role(info.grant.role))
            if verb == "chg" and info.grant.kind == "request"
            else card_buttons(_, grant_id, info.grant.kind)
        )
        await _edit(query, card_text(_, info, p.settings.tz), markup)
        return
    level = _LEVEL_CODE[match[3]] if match[3] else None
    role = _ROLE_CODE[match[4]] if match[4] else None
    result = await access.decide(p.db, grant_id, who.patient.id, verb == "ok", level, role)
    if result.outcome is DecisionOutcome.DECIDED and result.grant is not None:
        await query.answer(_("Done."))
        decided = dataclasses.replace(info, grant=result.grant)
        await _show_outcome(query, _, decided, p.settings.tz)
        await _tell_requester(context, decided)
        return
    current = result.grant or info.grant
    shown = dataclasses.replace(info, grant=current)
    if result.outcome is DecisionOutcome.INVALID:
        await query.answer(_("You can only lower what was asked for."), show_alert=True)
        return
    await query.answer(_outcome_line(_, current), show_alert=True)
    await _show_outcome(query, _, shown, p.settings.tz)


def _outcome_line(_: Translator, grant: Grant) -> str:
    """Where the request stands now, in words for the person who decides it."""
    if grant.status == "active":
        access_now = labels.access_summary(_, grant.level, grant.role)
        return _("Approved: {access}.").format(access=access_now)
    if grant.status == "denied":
        return _("Declined.")
    if grant.status == "expired":
        return _("This request has expired.")
    if grant.status == "revoked":
        # One status for three ends (storage/grants.py end()): the reason tells them apart.
        if grant.end_reason == "withdrawn":
            return _("This request was withdrawn.")
        if grant.end_reason == "left":
            return _("This access was approved and later given up.")
        return _("This access was approved and later revoked.")
    return _("This request is still waiting for a decision.")


async def _show_outcome(
    query: CallbackQuery, _: Translator, info: access.RequestInfo, tz: dt.tzinfo
) -> None:
    icon = {"active": "✅", "denied": "❌", "revoked": "🚫"}.get(info.grant.status, "⌛")
    text = card_text(_, info, tz) + "\n\n" + icon + " " + _outcome_line(_, info.grant)
    await _edit(query, text, None)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    # A double tap re-renders the same card: edit_in_place takes "not modified" calmly.
    await edit_in_place(query, text, markup)


async def _tell_requester(context: ContextTypes.DEFAULT_TYPE, info: access.RequestInfo) -> None:
    p = portal(context)
    chat_id = await access.telegram_id_of(p.db, info.requester.id)
    if chat_id is None:
        return
    _ = await recipient_translator(context, info.requester.id)
    grant = info.grant
    if grant.kind == "offer":
        await _tell_offerer(context, info)
        return
    if grant.status == "active":
        text = _("<b>{name}</b> approved your request: {access}.").format(
            name=esc(info.subject.full_name),
            access=labels.access_summary(_, grant.level, grant.role),
        )
        text += "\n" + _("Send /start to see the patients you access.")
    else:
        text = _("Your request to access the portal of <b>{name}</b> was declined.").format(
            name=esc(grant.subject_name or info.subject.full_name)
        )
    try:
        await context.bot.send_message(chat_id, text)
    except TelegramError as exc:
        log.info("could not tell requester of grant %s: %s", grant.id, type(exc).__name__)


async def _tell_offerer(context: ContextTypes.DEFAULT_TYPE, info: access.RequestInfo) -> None:
    if info.offerer is None:
        return
    chat_id = await access.telegram_id_of(portal(context).db, info.offerer.id)
    if chat_id is None:
        return
    _ = await recipient_translator(context, info.offerer.id)
    if info.grant.status == "active":
        text = _("<b>{name}</b> accepted access to the portal of {subject}: {access}.")
    else:
        text = _("<b>{name}</b> declined access to the portal of {subject}.")
    try:
        await context.bot.send_message(
            chat_id,
            text.format(
                name=esc(info.requester.full_name),
                subject=esc(info.subject.full_name),
                access=labels.access_summary(_, info.grant.level, info.grant.role),
            ),
        )
    except TelegramError as exc:
        log.info("could not tell the holder of grant %s: %s", info.grant.id, type(exc).__name__)


def approval_handler() -> CallbackQueryHandler:  # type: ignore[type-arg]
    return CallbackQueryHandler(decide_request, pattern=r"^ap:")
