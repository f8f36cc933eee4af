"""What happened: the changes that owe someone a message, as the domain reports them.

bot/access.py and bot/invitations.py emit one of these inside the transaction that made the
change; bot/notifier.py decides who is told what. Each carries the people a rule chose (the
decider, the holder who offered), so the notifier needs no rules of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.appointment_changes import Change
from storage.models import Grant, Invite, Login, Patient
from storage.notifications import Item
from storage.outbox import Kind
from storage.vocabulary import Action, Level, Role


@dataclass(frozen=True)
class AccessRequested:
    """A patient asked for access to another's portal."""

    grant: Grant
    decider_id: int | None  # who decides it now; None: nobody yet (an unknown email, ...)


@dataclass(frozen=True)
class DependentOffered:
    """A holder offered access to a dependent; the patient offered (the accessor) decides."""

    grant: Grant


@dataclass(frozen=True)
class RequestDecided:
    """A request or offer was approved or declined."""

    grant: Grant  # as it was asked for
    approved: bool
    offered_by: int | None  # for an offer: the holder who made it, when there still is one
    shown_on: tuple[int, int] | None  # (chat, message) of the card tapped: it shows it already


@dataclass(frozen=True)
class RequestWithdrawn:
    """The requester withdrew a request before it was decided."""

    grant: Grant


@dataclass(frozen=True)
class GrantRevoked:
    """Whoever decides for the subject ended someone's access."""

    grant: Grant


@dataclass(frozen=True)
class GrantLeft:
    """The accessor gave up their access."""

    grant: Grant
    decider_id: int | None  # who decides for the subject now


@dataclass(frozen=True)
class AccessChanged:
    """Whoever decides for the subject changed the level or role of someone's access."""

    grant: Grant  # as it was before the change
    level: Level
    role: Role


@dataclass(frozen=True)
class DecisionsWaiting:
    """A patient who decides signed in from a new chat, and these requests wait for them."""

    decider_id: int
    chat_id: int
    grant_ids: tuple[int, ...]


@dataclass(frozen=True)
class InviteLocked:
    """An invite link was locked after too many wrong dates of birth."""

    invite: Invite
    patient: Patient


@dataclass(frozen=True)
class InviteBurned:
    """An invite link was posted in a group chat, where others saw it; it no longer works."""

    invite: Invite
    patient: Patient


class SignOutBy(enum.StrEnum):
    """Who removed a login, as the access log records it."""

    PATIENT = Action.SIGNED_OUT.value  # the patient's own /signout
    PRACTICE = Action.UNLINKED.value  # a practitioner, in chat or with `python -m bot unlink`


@dataclass(frozen=True)
class SignedOut:
    """A Telegram account no longer holds a patient's portal."""

    patient: Patient
    login: Login  # as it was: whom to tell, and in which language
    by: SignOutBy


@dataclass(frozen=True)
class AppointmentComing:
    """An appointment starts within one of its reminders' time (the sweep, bot/reminders.py)."""

    appointment_id: int
    starts_at: int
    offset: int  # seconds before the start: which reminder this is
    recipient_ids: tuple[int, ...]  # the patient and those with access, as the rules chose


@dataclass(frozen=True)
class AppointmentMoved:
    """An import moved an appointment that reminders went out for."""

    appointment_id: int
    starts_at: int  # the new start
    recipient_ids: tuple[int, ...]  # whoever a reminder of it reached


@dataclass(frozen=True)
class ItemAdded:
    """An import added an invoice or clinical record for a patient it had brought in before."""

    subject_id: int
    item: Item
    item_id: int
    recipient_ids: tuple[int, ...]  # the patient and those whose access includes it


@dataclass(frozen=True)
class AppointmentChangedInBot:
    """A Confirm or Cancel made in the bot, for the practice to take."""

    change: Change
    practitioner_ids: tuple[int, ...]  # Telegram ids of the practitioners it is with


@dataclass(frozen=True)
class PolicyNotice:
    """A notice the practice's policy owes one person at one step: bot/sweep.py chooses
    whom by rule (both sides, ahead of a change and on the day) and the key that makes it
    go once however often the sweep runs."""

    kind: Kind
    dedupe_key: str
    message: Mapping[str, Any]  # ref_id, patient_id or chat_id, detail, lapses_at


@dataclass(frozen=True)
class AccessRenewed:
    """The patient renewed someone's access, or a young person kept it past adulthood."""

    grant: Grant
    ends_at: int | None  # None: no end (the policy sets no term)
    why: str  # "renewed" | "kept"
    dedupe_key: str


@dataclass(frozen=True)
class OpenCardsClosed:
    """A request's Approve cards no longer apply (the patient stopped all access)."""

    grant_id: int


@dataclass(frozen=True)
class AccessEndedQuietly:
    """Access ended where telling who ended it, or why, may cause harm (DAPB3051): each
    side is told only that it ended."""

    grant: Grant
    told: tuple[tuple[int, str], ...]  # (patient, "accessor" | "subject")


@dataclass(frozen=True)
class RenewalRequested:
    """The person with access asks the patient whose portal it is to renew it."""

    grant: Grant
    ends_at: int  # the end date they ask about: one notice per end date


@dataclass(frozen=True)
class FlowTimedOut:
    """A conversation was left unanswered past its deadline, and the timed job ended it
    (conversations/timeouts.py): its user hears that nothing was done."""

    chat_id: int
    flow: str  # the conversation's name: its own timeout message
    key: str  # the conversation and its last step: told once, whichever worker claims it
    away: bool  # the deadline passed while no worker was running (a restart)
    locale: str | None  # the language of the user's last step in it


Event = (
    AccessRequested
    | DependentOffered
    | RequestDecided
    | RequestWithdrawn
    | GrantRevoked
    | GrantLeft
    | AccessChanged
    | DecisionsWaiting
    | InviteLocked
    | InviteBurned
    | SignedOut
    | AppointmentComing
    | AppointmentMoved
    | ItemAdded
    | AppointmentChangedInBot
    | PolicyNotice
    | AccessRenewed
    | OpenCardsClosed
    | AccessEndedQuietly
    | RenewalRequested
    | FlowTimedOut
)
