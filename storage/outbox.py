"""The outbox: messages owed because of a change, queued in the change's own transaction.

A sender claims a row with a short lease before it sends, and marks it sent after: a row is
sent twice only if the sender dies between Telegram accepting the message and the mark (or
the lease runs out while Telegram still holds the request). The claim is one conditional
UPDATE, so it wins once whichever process or task asks.
"""

from __future__ import annotations

import contextvars
import enum
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from storage.db import Reads, Record, Writes, fetch_all, fetch_one, now

LEASE_S = 60  # longer than any one send with its retries inside the HTTP client
# A row queued while an update is handled is sent by that update, after its replies; the
# background sender takes it only if that has not happened by then (a crash, an error).
UPDATE_SENDS_S = 5

# The rows queued while handling the current update: sent as soon as it has been handled.
_queued_here: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "outbox_queued_here", default=None
)


def collect() -> list[int]:
    """From now on in this task (one update), remember the ids of the rows queued."""
    ids: list[int] = []
    _queued_here.set(ids)
    return ids


def collected() -> list[int]:
    """The ids queued so far in this task (see collect())."""
    return list(_queued_here.get() or ())


class Kind(enum.StrEnum):
    """What a row says; which change queues which, for whom: bot/notifier.py. Its words:
    handlers/notices.py, one renderer per kind."""

    REQUEST_CARD = "request_card"  # Approve / Deny for whoever decides a request or offer
    CARD_OUTCOME = "card_outcome"  # the decision written onto every card that asked for it
    DECISION = "decision"  # the requester (or the holder who offered) hears the outcome
    ACCESS_ENDED = "access_ended"  # the accessor hears that their access was revoked
    ACCESS_LEFT = "access_left"  # the decider hears that someone stopped accessing
    ACCESS_CHANGED = "access_changed"  # the accessor hears their level or role changed
    INVITE_LOCKED = "invite_locked"  # a practitioner hears their invite link was locked
    INVITE_BURNED = "invite_burned"  # a practitioner hears their invite was posted in a group
    SIGNED_OUT = "signed_out"  # a patient hears the practice signed their Telegram out
    # Sent on the bot's own schedule (bot/reminders.py): they wait for the end of the
    # recipient's quiet hours, and a recipient who blocked the bot does not get them later.
    REMINDER = "reminder"  # an appointment is coming: the patient and who has access
    APPOINTMENT_MOVED = "appointment_moved"  # the practice moved one they were reminded of
    NEW_ITEM = "new_item"  # a new invoice or result, after an import
    # A practitioner hears of a Confirm or Cancel made in the bot.
    APPOINTMENT_CHANGED = "appointment_changed"
    # The practice's policy (bot/sweep.py, bot/safeguarding.py); ref_id is the grant, or
    # the patient for INVITE_ASKED and HOLDER_TOLD; detail["as"] says which side is told.
    POLICY_AHEAD = "policy_ahead"  # a change of access is coming (rule, at, days ahead)
    POLICY_DONE = "policy_done"  # the change came (rule)
    END_DATE_SET = "end_date_set"  # access between adults now has an end date
    RENEWAL_ASKED = "renewal_asked"  # a practitioner: renew access to someone without a login
    RENEWED = "renewed"  # the person with access: renewed, until when
    INVITE_ASKED = "invite_asked"  # a practitioner: a young person needs their own login
    HOLDER_TOLD = "holder_told"  # the holder: own login offered, or holdership ended (rule)
    YOUNG_REVIEW = "young_review"  # the young person: approve someone's access (what)
    ACCESS_ENDED_QUIETLY = "access_ended_quietly"  # both sides; never by whom (DAPB3051)
    RENEWAL_REQUESTED = "renewal_requested"  # the patient: the person with access asks to renew
    # A user: the flow they left unanswered timed out (conversations/timeouts.py).
    FLOW_TIMED_OUT = "flow_timed_out"


class Message(BaseModel):
    id: int
    kind: Kind
    ref_id: int | None
    patient_id: int | None
    chat_id: int | None
    detail: dict[str, Any]
    keep: bool
    status: str
    attempts: int
    lapses_at: int | None


_COLUMNS = "id, kind, ref_id, patient_id, chat_id, detail, keep, status, attempts, lapses_at"


def _message(row: Record) -> Message:
    values = dict(row)
    values["detail"] = json.loads(values["detail"]) if values["detail"] else {}
    return Message.model_validate(values)


async def enqueue(
    conn: Writes,
    kind: Kind,
    *,
    ref_id: int | None = None,
    patient_id: int | None = None,
    chat_id: int | None = None,
    detail: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    keep: bool = True,
    lapses_at: int | None = None,
) -> int | None:
    """Queue one message; None when the same dedupe key was queued before (nothing new)."""
    at = now()
    collecting = _queued_here.get()
    row = await fetch_one(
        conn,
        "INSERT INTO outbox (kind, ref_id, patient_id, chat_id, detail, dedupe_key, keep,"
        " lapses_at, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (
            kind,
            ref_id,
            patient_id,
            chat_id,
            json.dumps(detail) if detail else None,
            dedupe_key,
            int(keep),
            lapses_at,
            at + UPDATE_SENDS_S if collecting is not None else at,
            at,
        ),
    )
    if row is None:  # queued before
        return None
    message_id = int(row[0])
    if collecting is not None:
        collecting.append(message_id)
    return message_id


async def due(conn: Reads, limit: int, skip: Sequence[int] = ()) -> list[Message]:
    """Queued rows whose time has come and that no sender holds, oldest first, leaving out
    `skip` (rows this sender let others pass for a moment)."""
    at = now()
    unless = f" AND id NOT IN ({', '.join('?' * len(skip))})" if skip else ""
    rows = await fetch_all(
        conn,
        f"SELECT {_COLUMNS} FROM outbox WHERE status = 'queued' AND due_at <= ?"
        f" AND (claimed_until IS NULL OR claimed_until < ?){unless} ORDER BY id LIMIT ?",
        (at, at, *skip, limit),
    )
    return [_message(row) for row in rows]


async def unclaim(conn: Writes, message_id: int) -> None:
    """Not sent yet, and not failed: another sender may take it (its time is unchanged)."""
    await conn.execute("UPDATE outbox SET claimed_until = NULL WHERE id = ?", (message_id,))


async def next_due_at(conn: Reads) -> int | None:
    # A row a dead sender had claimed is due again only when its lease runs out.
    row = await fetch_one(
        conn,
        "SELECT min(CASE WHEN claimed_until > due_at THEN claimed_until ELSE due_at END)"
        " FROM outbox WHERE status = 'queued'",
    )
    return row[0] if row and row[0] is not None else None


async def claim(conn: Writes, message_id: int) -> Message | None:
    """The row, leased to the caller; None when it is not queued or another holds it.
    Its due time is not checked: the update that queued a row sends it at once."""
    at = now()
    cur = await conn.execute(
        "UPDATE outbox SET claimed_until = ? WHERE id = ? AND status = 'queued'"
        " AND (claimed_until IS NULL OR claimed_until < ?)",
        (at + LEASE_S, message_id, at),
    )
    if not cur.rowcount:
        return None
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (message_id,))
    return _message(row) if row else None


async def mark_sent(
    conn: Writes, message_id: int, chat_id: int | None, sent_message_id: int | None
) -> None:
    await conn.execute(
        "UPDATE outbox SET status = 'sent', sent_at = ?, claimed_until = NULL,"
        " sent_chat_id = ?, sent_message_id = ? WHERE id = ?",
        (now(), chat_id, sent_message_id, message_id),
    )


async def mark_dropped(conn: Writes, message_id: int, why: str | None = None) -> None:
    """Nothing to say any more (the request was decided meanwhile), or it lapsed; `why`
    (e.g. 'blocked') is kept for counting."""
    await conn.execute(
        "UPDATE outbox SET status = 'dropped', claimed_until = NULL, dropped_why = ?,"
        " dropped_at = ? WHERE id = ?",
        (why, now(), message_id),
    )


async def postpone(conn: Writes, message_id: int, due_at: int) -> None:
    """Not now (the recipient's quiet hours): due again at `due_at`, not counted as a
    failed attempt."""
    await conn.execute(
        "UPDATE outbox SET due_at = ?, claimed_until = NULL WHERE id = ?", (due_at, message_id)
    )


async def hold(conn: Writes, message_id: int, chat_id: int) -> None:
    """The recipient blocked the bot (or never started it): kept for their next update,
    when release() queues it again."""
    await conn.execute(
        "UPDATE outbox SET status = 'held', claimed_until = NULL, chat_id = ? WHERE id = ?",
        (chat_id, message_id),
    )


async def hold_until_signed_in(conn: Writes, message_id: int) -> bool:
    """The recipient patient has no login: kept for their sign-in, when release() queues
    it again. False (nothing held) if they signed in meanwhile: send it now instead."""
    cur = await conn.execute(
        "UPDATE outbox SET status = 'held', claimed_until = NULL, chat_id = NULL"
        " WHERE id = ? AND NOT EXISTS"
        " (SELECT 1 FROM logins WHERE logins.patient_id = outbox.patient_id)",
        (message_id,),
    )
    return cur.rowcount == 1


async def retry_later(conn: Writes, message_id: int, delay_s: int) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, due_at = ?, claimed_until = NULL WHERE id = ?",
        (now() + delay_s, message_id),
    )


async def release(
    conn: Writes, *, patient_id: int | None = None, chat_id: int | None = None
) -> int:
    """Queue again what was held for a patient (they signed in) or a chat (they are back)."""
    if patient_id is None and chat_id is None:
        return 0
    column, value = ("patient_id", patient_id) if patient_id is not None else ("chat_id", chat_id)
    collecting = _queued_here.get()
    due_at = now() + (UPDATE_SENDS_S if collecting is not None else 0)
    rows = await fetch_all(
        conn,
        f"UPDATE outbox SET status = 'queued', due_at = ? WHERE status = 'held' AND {column} = ?"
        " RETURNING id",
        (due_at, value),
    )
    ids = sorted(row[0] for row in rows)
    if collecting is not None:  # inside an update: sent when it has been handled
        collecting.extend(ids)
    return len(ids)


async def has_held(conn: Reads, chat_id: int) -> bool:
    row = await fetch_one(
        conn, "SELECT 1 FROM outbox WHERE status = 'held' AND chat_id = ? LIMIT 1", (chat_id,)
    )
    return row is not None


async def sent_about(conn: Reads, kind: Kind, ref_id: int) -> list[tuple[int | None, int, int]]:
    """(recipient patient, chat, message) of every message of this kind that went out
    about `ref_id`."""
    rows = await fetch_all(
        conn,
        "SELECT patient_id, sent_chat_id, sent_message_id FROM outbox WHERE ref_id = ?"
        " AND kind = ? AND sent_message_id IS NOT NULL",
        (ref_id, kind),
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def card_for(conn: Reads, grant_id: int, patient_id: int, chat_id: int) -> bool:
    """A request card for this patient is on its way (queued or held) or went to this chat."""
    row = await fetch_one(
        conn,
        "SELECT 1 FROM outbox WHERE ref_id = ? AND kind = ? AND patient_id = ?"
        " AND (status IN ('queued', 'held') OR (status = 'sent' AND sent_chat_id = ?))"
        " LIMIT 1",
        (grant_id, Kind.REQUEST_CARD, patient_id, chat_id),
    )
    return row is not None
