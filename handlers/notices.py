"""The words of every message the outbox sends, made when it is sent: in the recipient's
language, from the state at that moment (a card for a request decided meanwhile is not sent
at all). One renderer per kind of row, chosen from one table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Update

from bot import access, labels
from bot.context import Portal, PortalContext
from bot.i18n import Translator, translator
from bot.outbox import UNREACHABLE, Outgoing, Render, Rendered
from bot.text import esc
from conversations.timeouts import flow_timed_out
from handlers.approvals import card_buttons, card_text, outcome_text
from handlers.policy_notices import RENDERERS as POLICY_RENDERERS
from handlers.reminders import appointment_changed, appointment_moved, new_item, reminder
from storage import Database, logins, outbox
from storage.db import watch_commits
from storage.outbox import Kind, Message
from storage.vocabulary import GrantKind, GrantStatus, Level, Role

Renderer = Callable[[Portal, Message], Awaitable[Rendered]]
T = TypeVar("T")
log = logging.getLogger(__name__)


async def outbox_first(update: Update, context: PortalContext) -> None:
    """Before any handler: collect what this update queues; a user who had blocked the bot
    and is back gets what was held for them."""
    outbox.collect()
    watch_commits()
    user = update.effective_user
    if user is None:
        return
    try:
        if context.caller.has_held:  # read with the caller, in the update's first read
            await context.portal.sender.release(chat_id=user.id)
    except Exception:
        # Raised here, the error handler would say "nothing was changed" and PTB would go
        # on to handle the update all the same: what waits goes out on their next visit.
        log.exception("could not release what waited for update %s", update.update_id)


async def outbox_last(update: Update, context: PortalContext) -> None:
    """After every handler: what this update queued goes out now (replies went first)."""
    await context.portal.sender.deliver(outbox.collected())


def renderer(p: Portal) -> Render:
    """The outbox's render function for this portal."""

    async def render(row: Message) -> Rendered:
        return await _RENDERERS[row.kind](p, row)

    return render


async def _patient_chat(p: Portal, patient_id: int | None) -> tuple[int, Translator] | None:
    if patient_id is None:
        return None
    async with p.db.read() as conn:
        login = await logins.for_patient(conn, patient_id)
    if login is None:
        return None
    return login.telegram_user_id, translator(login.locale, p.settings.default_locale)


async def _chat_translator(p: Portal, chat_id: int) -> Translator:
    async with p.db.read() as conn:
        login = await logins.get(conn, chat_id)
    return translator(login.locale if login else None, p.settings.default_locale)


async def request_card(p: Portal, row: Message) -> Rendered:
    """Approve / Deny for whoever decides, while the request is still theirs to decide."""
    info = await access.request_info(p.db, row.ref_id or 0)
    if (
        info is None
        or info.grant.status is not GrantStatus.PENDING
        or info.decider_id != row.patient_id
    ):
        return None
    to = await _patient_chat(p, row.patient_id)
    if to is None:
        return UNREACHABLE
    chat_id, _ = to
    text = card_text(_, info, p.settings.tz)
    return Outgoing(chat_id, text, card_buttons(_, info.grant.id, info.grant.kind))


async def card_outcome(p: Portal, row: Message) -> Rendered:
    """A card sent earlier shows what became of the request, without its buttons."""
    info = await access.request_info(p.db, row.ref_id or 0)
    message_id = row.detail.get("message_id")
    if info is None or row.chat_id is None or not isinstance(message_id, int):
        return None
    async with p.db.read() as conn:
        login = await logins.get(conn, row.chat_id)
    if login is None or login.patient_id != row.patient_id:
        return None  # that chat is no longer theirs (signed out, unlinked): it learns nothing
    _ = translator(login.locale, p.settings.default_locale)
    return Outgoing(row.chat_id, outcome_text(_, info, p.settings.tz), None, message_id)


def _decided(_: Translator, info: access.RequestInfo, row: Message) -> str:
    """The requester hears the outcome; for an offer, the holder who made it does."""
    # As it was decided (the access may have ended since, and that has a notice of its own).
    approved = bool(row.detail.get("approved", info.grant.status is GrantStatus.ACTIVE))
    words = _offer_decided if info.grant.kind is GrantKind.OFFER else _request_decided
    return words(_, info, approved)


def _offer_decided(_: Translator, info: access.RequestInfo, approved: bool) -> str:
    """The holder who offered: the patient offered accepted or declined."""
    name, subject = esc(info.requester.full_name), esc(info.subject.full_name)
    if not approved:
        return _("<b>{name}</b> declined access to the portal of {subject}.").format(
            name=name, subject=subject
        )
    return _("<b>{name}</b> accepted access to the portal of {subject}: {access}.").format(
        name=name,
        subject=subject,
        access=labels.access_summary(_, info.grant.level, info.grant.role),
    )


def _request_decided(_: Translator, info: access.RequestInfo, approved: bool) -> str:
    """The requester: their request was approved (perhaps for less) or declined."""
    grant = info.grant
    if not approved:
        return _("Your request to access the portal of <b>{name}</b> was declined.").format(
            name=esc(grant.subject_name or info.subject.full_name)
        )
    return (
        _("<b>{name}</b> approved your request: {access}.").format(
            name=esc(info.subject.full_name),
            access=labels.access_summary(_, grant.level, grant.role),
        )
        + "\n"
        + _("Send /start to see the patients you access.")
    )


def _to_patient(
    find: Callable[[Database, int], Awaitable[T | None]],
    words: Callable[[Translator, T, Message], str],
) -> Renderer:
    """A renderer for a notice to the row's patient, in their language, about what `find`
    reads by the row's ref_id (nothing is sent once that is gone)."""

    async def render(p: Portal, row: Message) -> Rendered:
        found = await find(p.db, row.ref_id or 0)
        if found is None:
            return None
        to = await _patient_chat(p, row.patient_id)
        if to is None:
            return UNREACHABLE
        chat_id, _ = to
        return Outgoing(chat_id, words(_, found, row))

    render.__doc__ = words.__doc__
    return render


def _about_grant(words: Callable[[Translator, access.GrantParties, Message], str]) -> Renderer:
    """A renderer for a notice to a patient about a grant and its two sides."""
    return _to_patient(access.grant_parties, words)


def _revoked(_: Translator, parties: access.GrantParties, row: Message) -> str:
    """The accessor: their access was revoked."""
    return _("Your access to <b>{name}</b>'s portal was revoked.").format(
        name=esc(parties[2].full_name)
    )


def _left(_: Translator, parties: access.GrantParties, row: Message) -> str:
    """The decider: someone stopped accessing a portal they decide for."""
    return _("<b>{name}</b> no longer accesses the portal of {subject}.").format(
        name=esc(parties[1].full_name), subject=esc(parties[2].full_name)
    )


def _changed(_: Translator, parties: access.GrantParties, row: Message) -> str:
    """The accessor: their level or role changed (as it was changed, not as it is now)."""
    grant = parties[0]
    level = Level(row.detail.get("level", grant.level))
    role = Role(row.detail.get("role", grant.role))
    return _("Your access to <b>{name}</b>'s portal changed: {access}.").format(
        name=esc(parties[2].full_name), access=labels.access_summary(_, level, role)
    )


def _to_chat(words: Callable[[Translator, Message], str]) -> Renderer:
    """A renderer for a notice to a Telegram chat, not a patient (a practitioner): in the
    language of that chat's own login, where it has one."""

    async def render(p: Portal, row: Message) -> Rendered:
        if row.chat_id is None:
            return None
        _ = await _chat_translator(p, row.chat_id)
        return Outgoing(row.chat_id, words(_, row))

    render.__doc__ = words.__doc__
    return render


def _invite_locked(_: Translator, row: Message) -> str:
    """The practitioner who sent an invite: it was locked after wrong dates of birth."""
    patient = row.detail.get("patient")
    if not isinstance(patient, str) or not patient:
        return _(
            "An invite link you sent was locked after three wrong dates of birth. "
            "If the patient still needs access, send them a new invite with /invite."
        )
    return _(
        "The invite link you sent to <b>{name}</b> was locked after three wrong dates of "
        "birth. If {name} still needs access, send them a new invite with /invite."
    ).format(name=esc(patient))


def _invite_burned(_: Translator, row: Message) -> str:
    """The practitioner who sent an invite that was posted in a group chat."""
    return _(
        "The invite link you sent for {name} was posted in a group chat, where others could "
        "see it, so it no longer works. Please send {name} a new invite with /invite."
    ).format(name=esc(str(row.detail.get("patient", ""))))


async def signed_out(p: Portal, row: Message) -> Rendered:
    """A patient whose Telegram account the practice signed out (their login is gone, so
    their language came with the row)."""
    if row.chat_id is None:
        return None
    locale = row.detail.get("locale")
    _ = translator(locale if isinstance(locale, str) else None, p.settings.default_locale)
    text = _(
        "Your practice has signed this Telegram account out of your patient portal at "
        "{practice}. To sign in again, ask your practice for a new invite link. If you "
        "didn't expect this, please contact them."
    ).format(practice=esc(p.settings.practice_name))
    return Outgoing(row.chat_id, text)


_RENDERERS: dict[Kind, Renderer] = {
    Kind.REQUEST_CARD: request_card,
    Kind.CARD_OUTCOME: card_outcome,
    Kind.DECISION: _to_patient(access.request_info, _decided),
    Kind.ACCESS_ENDED: _about_grant(_revoked),
    Kind.ACCESS_LEFT: _about_grant(_left),
    Kind.ACCESS_CHANGED: _about_grant(_changed),
    Kind.INVITE_LOCKED: _to_chat(_invite_locked),
    Kind.INVITE_BURNED: _to_chat(_invite_burned),
    Kind.SIGNED_OUT: signed_out,
    Kind.REMINDER: reminder,
    Kind.APPOINTMENT_MOVED: appointment_moved,
    Kind.NEW_ITEM: new_item,
    Kind.APPOINTMENT_CHANGED: appointment_changed,
    **POLICY_RENDERERS,  # the practice's policy (issue #20)
    Kind.FLOW_TIMED_OUT: flow_timed_out,  # conversations/timeouts.py
}
