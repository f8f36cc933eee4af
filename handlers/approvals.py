"""Access requests arriving as messages with one-tap Approve / Deny / Approve with changes.

Every tap is re-checked by bot.access against the database: who is tapping, whether they
decide for that patient, whether the request is still pending. Callback data only names
the request; it never carries authority.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from telegram import CallbackQuery, Update
from telegram.error import TelegramError

from bot import access, labels
from bot.access import DecisionOutcome, Refusal
from bot.callbacks import (
    ApproveAs,
    ApproveRequest,
    ApproveWithChanges,
    BackToRequest,
    DenyRequest,
)
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.text import esc
from handlers.guard import K, Tap, patient_tap
from handlers.send import answer_quietly, edit_in_place
from storage.models import Grant
from storage.vocabulary import EndReason, GrantKind, GrantStatus, Level, Role

log = logging.getLogger(__name__)


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


def card_buttons(_: Translator, grant_id: int, kind: GrantKind = GrantKind.REQUEST) -> Keyboard:
    approve, deny = ApproveRequest(grant_id).encode(), DenyRequest(grant_id).encode()
    if kind is GrantKind.OFFER:
        return Keyboard(
            [
                [
                    Button(_("✅ Accept"), data=approve),
                    Button(_("❌ Decline"), data=deny),
                ]
            ]
        )
    return Keyboard(
        [
            [
                Button(_("✅ Approve"), data=approve),
                Button(_("❌ Deny"), data=deny),
            ],
            [
                Button(
                    _("Approve with changes…"),
                    data=ApproveWithChanges(grant_id).encode(),
                )
            ],
        ]
    )


def _lower_options(_: Translator, grant: Grant) -> Keyboard:
    """Approve as each level and role below what was asked, then ◀ Back."""
    rows = [
        [
            Button(
                _("Approve as {access}").format(access=labels.access_summary(_, lv, rl)),
                data=ApproveAs(grant.id, lv, rl).encode(),
            )
        ]
        for lv in (Level.CLINICAL, Level.ADMINISTRATIVE)
        for rl in (Role.EDIT, Role.VIEW)
        if (lv, rl) != (grant.level, grant.role)
        and access.not_more_than(lv, rl, grant.level, grant.role)
    ]
    rows.append([Button(_("◀ Back"), data=BackToRequest(grant.id).encode())])
    return Keyboard(rows)


async def approve_request(update: Update, context: PortalContext) -> None:
    """✅ Approve (or ✅ Accept an offer): as asked."""
    tap = await patient_tap(update, context, ApproveRequest)
    if tap is not None:
        await _decide(tap, context, tap.data.grant, approve=True)


async def approve_as(update: Update, context: PortalContext) -> None:
    """Approve as a lower level or role than was asked."""
    tap = await patient_tap(update, context, ApproveAs)
    if tap is not None:
        await _decide(tap, context, tap.data.grant, True, tap.data.level, tap.data.role)


async def deny_request(update: Update, context: PortalContext) -> None:
    """❌ Deny (or ❌ Decline an offer)."""
    tap = await patient_tap(update, context, DenyRequest)
    if tap is not None:
        await _decide(tap, context, tap.data.grant, approve=False)


async def show_lower_options(update: Update, context: PortalContext) -> None:
    """Approve with changes…: the lower options in place of the card's buttons."""
    tap = await patient_tap(update, context, ApproveWithChanges)
    if tap is not None:
        await _show_card(tap, context, tap.data.grant, lower=True)


async def back_to_request(update: Update, context: PortalContext) -> None:
    """◀ Back from the lower options: the card's own buttons again."""
    tap = await patient_tap(update, context, BackToRequest)
    if tap is not None:
        await _show_card(tap, context, tap.data.grant, lower=False)


async def _show_card(tap: Tap[K], context: PortalContext, grant_id: int, *, lower: bool) -> None:
    """The card with its buttons (or the lower options), while the request is pending;
    once decided, what became of it."""
    _ = context._
    tz = context.portal.settings.tz
    info = await access.request_for_decider(context.portal.db, tap.me.id, grant_id)
    if isinstance(info, Refusal):
        await tap.query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    await answer_quietly(tap.query)
    grant = info.grant
    if grant.status is not GrantStatus.PENDING:
        await _show_outcome(tap.query, _, info, tz)
        return
    markup = (
        _lower_options(_, grant)
        if lower and grant.kind is GrantKind.REQUEST
        else card_buttons(_, grant.id, grant.kind)
    )
    await edit_in_place(tap.query, card_text(_, info, tz), markup)


async def _decide(
    tap: Tap[K],
    context: PortalContext,
    grant_id: int,
    approve: bool,
    level: Level | None = None,
    role: Role | None = None,
) -> None:
    """Approve or deny for the one who decides, then show the card as it now stands."""
    _ = context._
    p = context.portal
    info = await access.request_for_decider(p.db, tap.me.id, grant_id)
    if isinstance(info, Refusal):
        await tap.query.answer(_("This request isn't yours to decide."), show_alert=True)
        return
    tapped = tap.query.message
    shown_on = (tapped.chat.id, tapped.message_id) if tapped is not None else None
    result = await access.decide(p.db, grant_id, tap.me.id, approve, level, role, shown_on=shown_on)
    if result.outcome is DecisionOutcome.INVALID:
        await tap.query.answer(_("You can only lower what was asked for."), show_alert=True)
        return
    shown = dataclasses.replace(info, grant=result.grant or info.grant)
    if result.outcome is DecisionOutcome.DECIDED:
        # Saved, and the requester's notice queued with it (the outbox sends it, and writes
        # the outcome onto every card that asked): nothing below may undo or hide that.
        await answer_quietly(tap.query, _("Done."))
    else:
        await answer_quietly(tap.query, _outcome_line(_, shown.grant), alert=True)
    await _show_outcome(tap.query, _, shown, p.settings.tz)


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
    icon = _STATUS_ICONS.get(info.grant.status, "⌛")
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
