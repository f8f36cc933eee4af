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
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot import access, labels
from bot.access import DecisionOutcome
from bot.context import PortalContext
from bot.i18n import Translator
from bot.text import esc
from handlers.send import answer_quietly, edit_in_place
from storage.models import Grant
from storage.vocabulary import EndReason, GrantKind, GrantStatus, Level, Role

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
    if grant.kind is GrantKind.OFFER:
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
        lines += ["", _("Please decide by {date}.").format(date=_.day_of(grant.expires_at, tz))]
    return "\n".join(lines)


def card_buttons(
    _: Translator, grant_id: int, kind: GrantKind = GrantKind.REQUEST
) -> InlineKeyboardMarkup:
    if kind is GrantKind.OFFER:
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


async def decide_request(update: Update, context: PortalContext) -> None:
    """A tap on Approve, Deny, Approve with changes, a lowered option, or Back."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = PATTERN.match(query.data)
    if match is None or who.patient is None:
        await query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    verb, grant_id = match[1], int(match[2])
    p = context.portal
    info = await access.request_info(p.db, grant_id)
    if info is None or info.decider_id != who.patient.id:
        await access.record_refusal(p.db, who.patient.id, grant_id)
        await query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    if verb in ("chg", "back"):
        await query.answer()
        if info.grant.status is not GrantStatus.PENDING:
            await _show_outcome(query, _, info, p.settings.tz)
            return
        markup = (
            _lower_options(_, grant_id, info.grant.level, info.grant.role)
            if verb == "chg" and info.grant.kind is GrantKind.REQUEST
            else card_buttons(_, grant_id, info.grant.kind)
        )
        await edit_in_place(query, card_text(_, info, p.settings.tz), markup)
        return
    level = _LEVEL_CODE[match[3]] if match[3] else None
    role = _ROLE_CODE[match[4]] if match[4] else None
    tapped = query.message
    shown_on = (tapped.chat.id, tapped.message_id) if tapped is not None else None
    result = await access.decide(
        p.db, grant_id, who.patient.id, verb == "ok", level, role, shown_on=shown_on
    )
    if result.outcome is DecisionOutcome.DECIDED and result.grant is not None:
        # Saved, and the requester's notice queued with it (the outbox sends it, and writes
        # the outcome onto every card that asked): nothing below may undo or hide that.
        await answer_quietly(query, _("Done."))
        decided = dataclasses.replace(info, grant=result.grant)
        await _show_outcome(query, _, decided, p.settings.tz)
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
    if grant.status is GrantStatus.ACTIVE:
        access_now = labels.access_summary(_, grant.level, grant.role)
        return _("Approved: {access}.").format(access=access_now)
    if grant.status is GrantStatus.DENIED:
        return _("Declined.")
    if grant.status is GrantStatus.EXPIRED:
        return _("This request has expired.")
    if grant.status is GrantStatus.REVOKED:
        # One status for three ends (storage/grants.py end()): the reason tells them apart.
        if grant.end_reason is EndReason.WITHDRAWN:
            return _("This request was withdrawn.")
        if grant.end_reason is EndReason.LEFT:
            return _("This access was approved and later given up.")
        return _("This access was approved and later revoked.")
    return _("This request is still waiting for a decision.")


_STATUS_ICONS = {GrantStatus.ACTIVE: "✅", GrantStatus.DENIED: "❌", GrantStatus.REVOKED: "🚫"}


def outcome_text(_: Translator, info: access.RequestInfo, tz: dt.tzinfo) -> str:
    """The card as it reads once decided: what was asked, then what became of it."""
    icon = {GrantStatus.ACTIVE: "✅", GrantStatus.DENIED: "❌", GrantStatus.REVOKED: "🚫"}.get(
        info.grant.status, "⌛"
    )
    return card_text(_, info, tz) + "\n\n" + icon + " " + _outcome_line(_, info.grant)


async def _show_outcome(
    query: CallbackQuery, _: Translator, info: access.RequestInfo, tz: dt.tzinfo
) -> None:
    # A double tap re-renders the same card: edit_in_place takes "not modified" calmly.
    # Best effort after a decision: the outbox writes the outcome onto this card too.
    try:
        await edit_in_place(query, outcome_text(_, info, tz), None)
    except TelegramError as exc:
        log.info("could not show the outcome on the tapped card: %s", type(exc).__name__)


def approval_handler() -> CallbackQueryHandler:  # type: ignore[type-arg]
    return CallbackQueryHandler(decide_request, pattern=r"^ap:")
