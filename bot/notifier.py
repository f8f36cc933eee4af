"""Who is told what after a change: the one place that turns what happened (bot/events.py)
into the messages it owes, one outbox row per recipient (storage/outbox.py).

notify() runs inside the transaction that made the change, so the change and its messages
commit together or not at all. The words are made when a row is sent, in the recipient's
language and from the state at that moment: handlers/notices.py, one renderer per Kind.
Dedupe keys make a card go once per request and decider (and once per chat they sign in
from), however often it is asked for.
"""

from __future__ import annotations

from typing import Any, assert_never

from bot.events import (
    AccessChanged,
    AccessEndedQuietly,
    AccessRenewed,
    AccessRequested,
    AppointmentChangedInBot,
    AppointmentComing,
    AppointmentMoved,
    DecisionsWaiting,
    DependentOffered,
    Event,
    FlowTimedOut,
    GrantLeft,
    GrantRevoked,
    InviteBurned,
    InviteLocked,
    ItemAdded,
    OpenCardsClosed,
    PolicyNotice,
    RenewalRequested,
    RequestDecided,
    RequestWithdrawn,
    SignedOut,
    SignOutBy,
)
from storage import outbox
from storage.db import Writes, now
from storage.outbox import Kind
from storage.reminders import reminder_key
from storage.vocabulary import GrantKind

FLOW_NOTICE_LAPSES_S = 86400


async def notify(conn: Writes, event: Event) -> None:
    """Queue what `event` owes, for each person it owes it to."""
    match event:
        case AccessRequested(grant, decider_id):  # whoever decides: Approve / Deny
            await _card(conn, grant.id, decider_id)
        case DependentOffered(grant):  # the patient offered: Accept / Decline
            await _card(conn, grant.id, grant.accessor_id)
        case RequestDecided(grant, approved, offered_by, shown_on):
            # The requester hears the outcome (for an offer, the holder who made it); every
            # other card that asked shows it.
            told = offered_by if grant.kind is GrantKind.OFFER else grant.accessor_id
            await _tell(conn, Kind.DECISION, grant.id, told, {"approved": approved})
            await _card_outcomes(conn, grant.id, shown_on)
        case RequestWithdrawn(grant):  # every card that asked shows it was withdrawn
            await _card_outcomes(conn, grant.id, None)
        case GrantRevoked(grant):  # the accessor
            await _tell(conn, Kind.ACCESS_ENDED, grant.id, grant.accessor_id)
        case GrantLeft(grant, decider_id):  # whoever decides for the subject
            await _tell(conn, Kind.ACCESS_LEFT, grant.id, decider_id)
        case AccessChanged(grant, level, role):  # the accessor, with the access as changed
            detail = {"level": str(level), "role": str(role)}
            await _tell(conn, Kind.ACCESS_CHANGED, grant.id, grant.accessor_id, detail)
        case DecisionsWaiting(decider_id, chat_id, grant_ids):  # a card each, in the new chat
            await _cards_in_chat(conn, grant_ids, decider_id, chat_id)
        case InviteLocked(invite, patient):  # the practitioner who sent the invite
            name = {"patient": patient.full_name}
            await _tell_chat(conn, Kind.INVITE_LOCKED, invite.id, invite.invited_by, name)
        case InviteBurned(invite, patient):  # the practitioner who sent the invite
            name = {"patient": patient.full_name}
            await _tell_chat(conn, Kind.INVITE_BURNED, invite.id, invite.invited_by, name)
        case SignedOut(patient, login, by):  # signed out by the practice: that Telegram account
            if by is SignOutBy.PRACTICE:  # a patient who signed themself out knows already
                locale = {"locale": login.locale}  # their login is gone: its language goes along
                await _tell_chat(conn, Kind.SIGNED_OUT, patient.id, login.telegram_user_id, locale)
        # On the bot's own schedule: once per event and recipient, dropped (and counted) for
        # one who blocked the bot, and waiting out their quiet hours (handlers/reminders.py).
        case AppointmentComing(appointment_id, starts_at, offset, recipient_ids):
            for patient_id in recipient_ids:
                key = reminder_key(appointment_id, starts_at, offset, patient_id)
                when = {"starts_at": starts_at, "offset": offset}
                await _scheduled(conn, Kind.REMINDER, appointment_id, patient_id, when, key)
        case AppointmentMoved(appointment_id, starts_at, recipient_ids):  # those reminded
            for patient_id in recipient_ids:
                key = f"moved:{appointment_id}:{starts_at}:{patient_id}"
                moved = {"starts_at": starts_at}
                await _scheduled(
                    conn, Kind.APPOINTMENT_MOVED, appointment_id, patient_id, moved, key
                )
        case ItemAdded(subject_id, item, item_id, recipient_ids):
            for patient_id in recipient_ids:
                key = f"new:{item}:{item_id}:{patient_id}"
                about = {"subject": subject_id, "item": str(item)}
                await _scheduled(conn, Kind.NEW_ITEM, item_id, patient_id, about, key)
        case AppointmentChangedInBot(change, practitioner_ids):  # the practitioners it is with
            for chat_id in practitioner_ids:
                await _tell_chat(conn, Kind.APPOINTMENT_CHANGED, change.id, chat_id, {})
        # The practice's policy (bot/sweep.py, bot/safeguarding.py).
        case PolicyNotice(kind, key, message):  # whom the sweep chose by rule, once per key
            assert kind in _POLICY_NOTICES, kind
            await outbox.enqueue(conn, kind, dedupe_key=key, **message)
        case AccessRenewed(grant, ends_at, why, key):  # the person with access: until when
            renewal: dict[str, Any] = {"at": ends_at, "why": why}
            await outbox.enqueue(
                conn,
                Kind.RENEWED,
                ref_id=grant.id,
                patient_id=grant.accessor_id,
                detail=renewal,
                dedupe_key=key,
            )
        case OpenCardsClosed(grant_id):  # every card that asked shows it no longer applies
            await _card_outcomes(conn, grant_id, None)
        case AccessEndedQuietly(grant, told):  # each side: that it ended, never by whom
            for patient_id, side in told:
                await outbox.enqueue(
                    conn,
                    Kind.ACCESS_ENDED_QUIETLY,
                    ref_id=grant.id,
                    patient_id=patient_id,
                    detail={"as": side},
                    dedupe_key=f"quietly:{grant.id}:{patient_id}",
                )
        case RenewalRequested(grant, ends_at):  # the patient whose portal it is: Renew
            await outbox.enqueue(
                conn,
                Kind.RENEWAL_REQUESTED,
                ref_id=grant.id,
                patient_id=grant.subject_id,
                detail={"at": ends_at},
                dedupe_key=f"renew_asked:{grant.id}:{ends_at}",
                lapses_at=ends_at,
            )
        # The bot's own: a conversation left unanswered ended (conversations/timeouts.py);
        # not kept for one who blocked the bot, and pointless a day later.
        case FlowTimedOut(chat_id, flow, key, away, locale):
            await outbox.enqueue(
                conn,
                Kind.FLOW_TIMED_OUT,
                chat_id=chat_id,
                detail={"flow": flow, "away": away, "locale": locale},
                dedupe_key=f"flow_timed_out:{key}",
                keep=False,
                lapses_at=now() + FLOW_NOTICE_LAPSES_S,
            )
        case _:
            assert_never(event)


# What a PolicyNotice may carry: the sweep's notices, ahead of a change, on the day, and the
# requests it makes of practitioners, holders and young people.
_POLICY_NOTICES = frozenset(
    {
        Kind.POLICY_AHEAD,
        Kind.POLICY_DONE,
        Kind.END_DATE_SET,
        Kind.RENEWAL_ASKED,
        Kind.INVITE_ASKED,
        Kind.HOLDER_TOLD,
        Kind.YOUNG_REVIEW,
    }
)


async def _scheduled(
    conn: Writes, kind: Kind, ref_id: int, patient_id: int, detail: dict[str, Any], key: str
) -> None:
    """A reminder or notice the bot sends of its own accord: never kept for a recipient who
    blocked the bot (it would be stale by the time they are back)."""
    await outbox.enqueue(
        conn, kind, ref_id=ref_id, patient_id=patient_id, detail=detail, dedupe_key=key, keep=False
    )


async def _tell(
    conn: Writes,
    kind: Kind,
    grant_id: int,
    patient_id: int | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """A message to a patient (sent to whichever chat they are signed in from, when they are);
    nothing when there is nobody to tell."""
    if patient_id is not None:
        await outbox.enqueue(conn, kind, ref_id=grant_id, patient_id=patient_id, detail=detail)


async def _tell_chat(
    conn: Writes, kind: Kind, ref_id: int, chat_id: int | None, detail: dict[str, Any]
) -> None:
    """A message to a Telegram chat that may have no patient behind it (a practitioner, a
    login that is gone); nothing when there is no chat."""
    if chat_id is not None:
        await outbox.enqueue(conn, kind, ref_id=ref_id, chat_id=chat_id, detail=detail)


async def _card(conn: Writes, grant_id: int, decider_id: int | None) -> None:
    """The Approve / Deny card for whoever decides, once per request and decider."""
    if decider_id is None:
        return
    await outbox.enqueue(
        conn,
        Kind.REQUEST_CARD,
        ref_id=grant_id,
        patient_id=decider_id,
        dedupe_key=f"card:{grant_id}:{decider_id}",
    )


async def _cards_in_chat(
    conn: Writes, grant_ids: tuple[int, ...], decider_id: int, chat_id: int
) -> None:
    """A card for each request, for the chat the decider just signed in from, unless one is
    on its way (queued, or held for their sign-in) or already there."""
    for grant_id in grant_ids:
        if not await outbox.card_for(conn, grant_id, decider_id, chat_id):
            await outbox.enqueue(
                conn,
                Kind.REQUEST_CARD,
                ref_id=grant_id,
                patient_id=decider_id,
                dedupe_key=f"card:{grant_id}:{decider_id}:{chat_id}",
            )


async def _card_outcomes(conn: Writes, grant_id: int, shown_on: tuple[int, int] | None) -> None:
    """Every card that asked about this request shows what became of it (but the one the
    decider tapped, which shows it already)."""
    for patient_id, chat_id, message_id in await outbox.sent_about(
        conn, Kind.REQUEST_CARD, grant_id
    ):
        if (chat_id, message_id) == shown_on:
            continue
        await outbox.enqueue(
            conn,
            Kind.CARD_OUTCOME,
            ref_id=grant_id,
            patient_id=patient_id,  # edited only while the chat is still theirs
            chat_id=chat_id,
            detail={"message_id": message_id},
            keep=False,
        )
