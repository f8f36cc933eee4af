"""Every button's data, as a small typed value (in the spirit of PTB's
arbitrarycallbackdatabot, but stateless: the data is a short string in the message).

A kind is a frozen dataclass with a short `prefix`; its fields are ints, enums of the domain
vocabulary, or short words. It encodes itself (`encode`, ≤ 64 bytes, Telegram's limit),
parses itself (`parse`, None for anything that does not match exactly) and gives its
handler's anchored pattern (`pattern`), so a prefix is written once and a button and its
handler cannot drift apart.

The data never carries authority: it names what the user tapped (a grant id, a level), and
the handler asks bot/access.py, with the caller from the update, whether that is allowed.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import operator
import re
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Self

from bot.access import Area
from storage.notifications import Item, Topic
from storage.vocabulary import Level, Relationship, Role

MAX_BYTES = 64  # Telegram's limit for callback_data
_INT = r"\d{1,18}"
_WORD = r"[A-Za-z0-9_-]{1,32}"


@dataclasses.dataclass(frozen=True)
class Callback:
    """Base of every kind: `prefix` then each field, joined by ':'."""

    prefix: ClassVar[str]
    kinds: ClassVar[list[type[Callback]]] = []  # every kind, for tests/test_callbacks.py

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if any(k.prefix == cls.prefix for k in Callback.kinds):
            raise TypeError(f"two callback kinds share the prefix {cls.prefix!r}")
        Callback.kinds.append(cls)

    def encode(self) -> str:
        # Inline, no call per field: ~10 buttons an update (issue #23).
        parts = [self.prefix]
        for value in (_VALUES.get(type(self)) or _values(type(self)))(self):
            if isinstance(value, str):  # a word, or a StrEnum member: its value as it is
                parts.append(value)
            elif value is True or value is False:
                parts.append("1" if value else "0")
            else:
                parts.append(str(value))
        data = ":".join(parts)
        if (len(data) if data.isascii() else len(data.encode())) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def pattern(cls) -> str:
        """The anchored regex for this kind's handler (CallbackQueryHandler(pattern=...))."""
        return _regex(cls).pattern

    @classmethod
    def parse(cls, data: object) -> Self | None:
        """The value, or None when `data` is not exactly this kind (forged, stale, other)."""
        if not isinstance(data, str):
            return None
        match = _regex(cls).fullmatch(data)
        if match is None:
            return None
        hints = _hints(cls)
        values = {
            f.name: _decode_field(hints[f.name], raw)
            for f, raw in zip(_fields(cls), match.groups(), strict=True)
        }
        return cls(**values)


def _fields(cls: type[Callback]) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def _values(cls: type[Callback]) -> Callable[[Callback], tuple[object, ...]]:
    """The kind's field values in order, read in one call (dataclasses.fields() walks the
    class each time); each field's type checked once, as its pattern checks it."""
    hints = _hints(cls)
    names = [f.name for f in _fields(cls)]
    for name in names:
        _field_regex(hints[name])  # int, bool, str or a string enum, else TypeError
    values: Callable[[Callback], tuple[object, ...]]
    if len(names) > 1:
        values = operator.attrgetter(*names)
    else:

        def values(value: Callback) -> tuple[object, ...]:
            return tuple(getattr(value, name) for name in names)  # none, or one

    _VALUES[cls] = values
    return values


# Worked out on first use (the dataclass is not made yet when __init_subclass__ runs). Plain
# dicts, not functools.cache: mypy takes a frozen dataclass's class object for unhashable.
_HINTS: dict[type[Callback], dict[str, Any]] = {}
_REGEXES: dict[type[Callback], re.Pattern[str]] = {}
_VALUES: dict[type[Callback], Callable[[Callback], tuple[object, ...]]] = {}


def _hints(cls: type[Callback]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _regex(cls: type[Callback]) -> re.Pattern[str]:
    regex = _REGEXES.get(cls)
    if regex is None:
        hints = _hints(cls)
        fields = (f"({_field_regex(hints[f.name])})" for f in _fields(cls))
        # \Z, not $: PTB matches with re.match, and $ would also accept a trailing newline.
        regex = _REGEXES[cls] = re.compile("^" + ":".join([re.escape(cls.prefix), *fields]) + r"\Z")
    return regex


def _field_regex(hint: Any) -> str:
    if hint is int:
        return _INT
    if hint is bool:
        return "[01]"
    # A string enum only: its member is its value as text, which encode() joins as it is.
    if isinstance(hint, type) and issubclass(hint, enum.Enum) and issubclass(hint, str):
        return "|".join(re.escape(str(m.value)) for m in hint)
    if hint is str:
        return _WORD
    raise TypeError(f"a callback field must be int, bool, str or a string enum, not {hint!r}")


def _decode_field(hint: Any, raw: str) -> object:
    if hint is int:
        return int(raw)
    if hint is bool:
        return raw == "1"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(raw)
    return raw


# ---------------------------------------------------------------------------------------
# The kinds. One section per area; the handler each one reaches is named beside it.
# ---------------------------------------------------------------------------------------


# /language (handlers/language.py)
@dataclasses.dataclass(frozen=True)
class ChooseLanguage(Callback):
    """→ save_language"""

    prefix = "lang"
    code: str


# The home menu (handlers/start.py, handlers/menu.py). "➕ Add a patient" is /addpatient's
# entry point: AddPatient, with the flows below.
@dataclasses.dataclass(frozen=True)
class OpenArea(Callback):
    """📅 Appointments, 🧾 Invoices, 📋 Records or 👤 Details on the home menu → open_area"""

    prefix = "home:v"
    area: Area


@dataclasses.dataclass(frozen=True)
class OpenSwitch(Callback):
    """🔄 Switch patient, on the home menu and under every view → open_switch"""

    prefix = "home:s"


@dataclasses.dataclass(frozen=True)
class OpenAccess(Callback):
    """🔐 Access on the home menu → show_access"""

    prefix = "home:access"


@dataclasses.dataclass(frozen=True)
class OpenActivity(Callback):
    """📜 Activity on the home menu → show_activity"""

    prefix = "home:activity"


@dataclasses.dataclass(frozen=True)
class TurnHomePage(Callback):
    """◀ ▶ under the patients listed on the home message → turn_home_page"""

    prefix = "home:p"
    page: int


# The portal views and /switch (handlers/views.py)
@dataclasses.dataclass(frozen=True)
class TurnPage(Callback):
    """◀ ▶ and Past/Upcoming under a view, and the other views below it → turn_page"""

    prefix = "pg"
    area: Area
    subject: int
    page: int
    past: bool = False  # past appointments rather than upcoming ones


@dataclasses.dataclass(frozen=True)
class SwitchTo(Callback):
    """A person (or Me) in a /switch list → switch_to"""

    prefix = "sw"
    patient: int


@dataclasses.dataclass(frozen=True)
class TurnSwitchPage(Callback):
    """◀ ▶ in a /switch list of everyone → turn_switch_page"""

    prefix = "swp"
    page: int


_FOUND_BYTES = 24  # of the part of a name; packed, 32 characters


@dataclasses.dataclass(frozen=True)
class TurnFoundPage(Callback):
    """◀ ▶ in a /switch list of those found with part of a name → turn_found_page

    The part travels packed (base64url, as button data is made of words), cut to 24 bytes
    first: a shorter part finds more people, never fewer. Build it with `of`."""

    prefix = "swf"
    page: int
    packed: str

    @classmethod
    def of(cls, page: int, part: str) -> TurnFoundPage:
        cut = part.encode()[:_FOUND_BYTES].decode(errors="ignore").encode()
        return cls(page, base64.urlsafe_b64encode(cut).decode().rstrip("="))

    @property
    def part(self) -> str:
        """The part of a name; empty when the packed text is not one (forged)."""
        try:
            padded = self.packed + "=" * (-len(self.packed) % 4)
            return base64.urlsafe_b64decode(padded).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError both are
            return ""


@dataclasses.dataclass(frozen=True)
class AskToCancel(Callback):
    """Cancel <day> under an upcoming appointment → ask_to_cancel"""

    prefix = "apt:ask"
    subject: int
    appointment: int
    page: int


@dataclasses.dataclass(frozen=True)
class CancelAppointment(Callback):
    """Yes, cancel it → cancel_appointment"""

    prefix = "apt:yes"
    subject: int
    appointment: int
    page: int


@dataclasses.dataclass(frozen=True)
class KeepAppointment(Callback):
    """No, keep it → keep_appointment"""

    prefix = "apt:no"
    subject: int
    appointment: int
    page: int


@dataclasses.dataclass(frozen=True)
class ConfirmAppointment(Callback):
    """Confirm <day> under a booked appointment → confirm_appointment"""

    prefix = "apt:ok"
    subject: int
    appointment: int
    page: int


# /access (handlers/manage.py). "Share <name> with someone" is the share flow's entry
# point: ShareDependent, with the flows below.
@dataclasses.dataclass(frozen=True)
class BackToAccess(Callback):
    """◀ Back to the whole picture → back_to_access"""

    prefix = "ac:home"


@dataclasses.dataclass(frozen=True)
class OpenGrant(Callback):
    """<name> › on a grant, and No under a question about it → open_grant"""

    prefix = "ac:g"
    grant: int


@dataclasses.dataclass(frozen=True)
class ChangeLevel(Callback):
    """Make it Clinical / Make it Administrative → change_level"""

    prefix = "ac:lv"
    grant: int
    level: Level


@dataclasses.dataclass(frozen=True)
class ChangeRole(Callback):
    """Make it View / Make it Edit → change_role"""

    prefix = "ac:rl"
    grant: int
    role: Role


@dataclasses.dataclass(frozen=True)
class AskToRevoke(Callback):
    """Revoke access → ask_to_revoke"""

    prefix = "ac:rv"
    grant: int


@dataclasses.dataclass(frozen=True)
class RevokeAccess(Callback):
    """Yes under "Revoke …'s access?" → revoke_access"""

    prefix = "ac:rvy"
    grant: int


@dataclasses.dataclass(frozen=True)
class AskToLeave(Callback):
    """Stop accessing → ask_to_leave"""

    prefix = "ac:lf"
    grant: int


@dataclasses.dataclass(frozen=True)
class StopAccessing(Callback):
    """Yes under "Stop accessing …'s portal?" → stop_accessing"""

    prefix = "ac:lfy"
    grant: int


@dataclasses.dataclass(frozen=True)
class WithdrawRequest(Callback):
    """Withdraw request for <name> → withdraw_request"""

    prefix = "ac:wd"
    grant: int


@dataclasses.dataclass(frozen=True)
class OpenDependent(Callback):
    """<name>'s account › → open_dependent"""

    prefix = "ac:dep"
    patient: int


@dataclasses.dataclass(frozen=True)
class GiveOwnLogin(Callback):
    """Give <name> their own login → give_own_login"""

    prefix = "ac:own"
    patient: int


# Access requests and offers (handlers/approvals.py)
@dataclasses.dataclass(frozen=True)
class ApproveRequest(Callback):
    """✅ Approve / ✅ Accept, on a card or under Pending in /access → approve_request"""

    prefix = "ap:ok"
    grant: int


@dataclasses.dataclass(frozen=True)
class ApproveAs(Callback):
    """Approve as <less than was asked> → approve_as"""

    prefix = "ap:as"
    grant: int
    level: Level
    role: Role


@dataclasses.dataclass(frozen=True)
class DenyRequest(Callback):
    """❌ Deny / ❌ Decline → deny_request"""

    prefix = "ap:no"
    grant: int


@dataclasses.dataclass(frozen=True)
class ApproveWithChanges(Callback):
    """Approve with changes… → show_lower_options"""

    prefix = "ap:chg"
    grant: int


@dataclasses.dataclass(frozen=True)
class BackToRequest(Callback):
    """◀ Back under the lower options → back_to_request"""

    prefix = "ap:back"
    grant: int


# /activity (handlers/activity.py)
@dataclasses.dataclass(frozen=True)
class TurnLogPage(Callback):
    """◀ ▶ in an access log, and 📜 <name>'s access log in /access → turn_log_page"""

    prefix = "log"
    subject: int
    page: int


# Signing out (handlers/signout.py); /unlink's Cancel is conversations/unlink.py's.
@dataclasses.dataclass(frozen=True)
class SignOut(Callback):
    """Yes, sign me out: for the one sign-in made at `since` → sign_out"""

    prefix = "so:y"
    patient: int
    since: int


@dataclasses.dataclass(frozen=True)
class StaySignedIn(Callback):
    """No under /signout → stay_signed_in"""

    prefix = "so:n"


@dataclasses.dataclass(frozen=True)
class UnlinkAccount(Callback):
    """Yes, sign them out, under a practitioner's /unlink: only while that Telegram account
    still holds the portal → unlink_account"""

    prefix = "unl:y"
    patient: int
    telegram_user: int


@dataclasses.dataclass(frozen=True)
class KeepLinked(Callback):
    """No under a practitioner's /unlink → keep_linked"""

    prefix = "unl:n"


# Conversations (conversations/)
class FlowName(enum.StrEnum):
    """The flow a ◀ Back or Cancel belongs to: a user can be in two flows at once, and a
    button answers only its own."""

    ADD_PATIENT = "add"
    INVITE = "inv"
    SHARE = "sh"
    UNLINK = "unl"


class AddingAnswer(enum.StrEnum):
    """An answer of /addpatient that its summary offers to change."""

    NAME = "name"
    RELATIONSHIP = "relationship"
    LEVEL = "level"
    ROLE = "role"
    OWN_LOGIN = "own"


@dataclasses.dataclass(frozen=True)
class GoBack(Callback):
    """◀ Back in a flow → the step before (Flow.conversation's `back`)"""

    prefix = "back"
    flow: FlowName


@dataclasses.dataclass(frozen=True)
class CancelFlow(Callback):
    """Cancel in a flow → Flow.cancel"""

    prefix = "cancel"
    flow: FlowName


@dataclasses.dataclass(frozen=True)
class AddPatient(Callback):
    """➕ Add a patient you access, on the home menu → addpatient.start_adding"""

    prefix = "home:add"


@dataclasses.dataclass(frozen=True)
class ChooseRelationship(Callback):
    """→ addpatient.save_relationship"""

    prefix = "add:rel"
    relationship: Relationship


@dataclasses.dataclass(frozen=True)
class AskForLevel(Callback):
    """The access level asked for → addpatient.save_level"""

    prefix = "add:lvl"
    level: Level


@dataclasses.dataclass(frozen=True)
class AskForRole(Callback):
    """The role asked for → addpatient.save_role"""

    prefix = "add:role"
    role: Role


@dataclasses.dataclass(frozen=True)
class AnswerOwnLogin(Callback):
    """Whether the patient has their own login → addpatient.save_own_login"""

    prefix = "add:own"
    own: bool


@dataclasses.dataclass(frozen=True)
class ChangeAnswers(Callback):
    """✏️ Change, under the summary → addpatient.ask_what_to_change"""

    prefix = "add:chg"


@dataclasses.dataclass(frozen=True)
class ChangeAnswer(Callback):
    """One answer to change → addpatient.change_answer"""

    prefix = "add:edit"
    answer: AddingAnswer


@dataclasses.dataclass(frozen=True)
class ConfirmAdding(Callback):
    """✅ Confirm, under the summary → addpatient.confirm"""

    prefix = "add:ok"


@dataclasses.dataclass(frozen=True)
class ShareDependent(Callback):
    """Share <name> with someone, in /access → share.start_sharing"""

    prefix = "sh:start"
    dependent: int


@dataclasses.dataclass(frozen=True)
class OfferLevel(Callback):
    """The access level offered → share.save_level"""

    prefix = "sh:lvl"
    level: Level


@dataclasses.dataclass(frozen=True)
class OfferRole(Callback):
    """The role offered → share.save_role"""

    prefix = "sh:role"
    role: Role


@dataclasses.dataclass(frozen=True)
class ConfirmSharing(Callback):
    """✅ Confirm, under the offer → share.confirm_share"""

    prefix = "sh:ok"


@dataclasses.dataclass(frozen=True)
class SkipEmail(Callback):
    """Skip, when /invite asks for the patient's email → invite.skip_email"""

    prefix = "inv:skip"


# Reminders, new-item notices and /notifications (handlers/reminders.py,
# handlers/notifications.py)


@dataclasses.dataclass(frozen=True)
class ConfirmFromReminder(Callback):
    """→ confirm_from_reminder"""

    prefix = "rmc"
    appointment_id: int


@dataclasses.dataclass(frozen=True)
class CancelFromReminder(Callback):
    """→ ask_to_cancel_from_reminder (Cancel asks once more)"""

    prefix = "rmx"
    appointment_id: int


@dataclasses.dataclass(frozen=True)
class ConfirmCancelFromReminder(Callback):
    """→ cancel_from_reminder"""

    prefix = "rmy"
    appointment_id: int


@dataclasses.dataclass(frozen=True)
class KeepFromReminder(Callback):
    """→ keep_from_reminder"""

    prefix = "rmk"
    appointment_id: int


@dataclasses.dataclass(frozen=True)
class OpenNewItem(Callback):
    """→ open_new_item"""

    prefix = "nwo"
    subject_id: int
    item: Item


@dataclasses.dataclass(frozen=True)
class ShowNotifications(Callback):
    """→ back_to_notifications"""

    prefix = "nth"
    page: int


@dataclasses.dataclass(frozen=True)
class ChooseNotificationsFor(Callback):
    """→ show_notifications_for"""

    prefix = "ntp"
    subject_id: int


@dataclasses.dataclass(frozen=True)
class ToggleTopic(Callback):
    """→ toggle_topic"""

    prefix = "ntt"
    subject_id: int
    topic: Topic


@dataclasses.dataclass(frozen=True)
class ToggleQuietHours(Callback):
    """→ toggle_quiet_hours"""

    prefix = "ntq"


@dataclasses.dataclass(frozen=True)
class ShiftQuietHours(Callback):
    """→ shift_quiet_hours (the next choice for when they start, or end)"""

    prefix = "nts"
    end: bool


# The practice's policy: its notices and cards, stopping all access, the practice's list
# (handlers/safeguarding.py)
@dataclasses.dataclass(frozen=True)
class ContinueAccess(Callback):
    """✅ Approve on the young person's card: this person's access continues → continue_access"""

    prefix = "sg:ok"
    grant: int


@dataclasses.dataclass(frozen=True)
class EndAccessAsYoung(Callback):
    """❌ Deny on the young person's card: this person's access ends → deny_access"""

    prefix = "sg:no"
    grant: int


@dataclasses.dataclass(frozen=True)
class ApproveClinical(Callback):
    """✅ Approve on the young person's card: Clinical again → approve_clinical"""

    prefix = "sg:cl"
    grant: int


@dataclasses.dataclass(frozen=True)
class KeepAdministrative(Callback):
    """❌ Deny on the young person's card: it stays Administrative → keep_administrative"""

    prefix = "sg:ad"
    grant: int


@dataclasses.dataclass(frozen=True)
class KeepAfterAdulthood(Callback):
    """Keep <name>'s access, before the adult birthday → keep_access"""

    prefix = "sg:kp"
    grant: int


@dataclasses.dataclass(frozen=True)
class RenewAccess(Callback):
    """Renew <name>'s access, on a notice or in /access → renew_access"""

    prefix = "sg:rn"
    grant: int


@dataclasses.dataclass(frozen=True)
class AskPatientToRenew(Callback):
    """Ask <name> to renew, on the notice to the person with access → ask_to_renew"""

    prefix = "sg:ask"
    grant: int


@dataclasses.dataclass(frozen=True)
class RenewForPatient(Callback):
    """Renew, on a practitioner's card → renew_for_patient"""

    prefix = "sg:prn"
    grant: int


@dataclasses.dataclass(frozen=True)
class EndForPatient(Callback):
    """End, on a practitioner's card → end_for_patient"""

    prefix = "sg:pend"
    grant: int


@dataclasses.dataclass(frozen=True)
class AskToStopAll(Callback):
    """Stop all access to my portal (or a dependent's), in /access → ask_to_stop_all"""

    prefix = "sg:stop"
    patient: int


@dataclasses.dataclass(frozen=True)
class StopAllAccess(Callback):
    """Yes under "Stop all access …?" → stop_all"""

    prefix = "sg:stopy"
    patient: int


# practitioner access (handlers/practice_access.py): who has access to a patient, and
# suspending one person's access. Every tap is checked again on the server: the tapper is
# a practitioner now, and the grant is active on that patient.
@dataclasses.dataclass(frozen=True)
class OpenPatientAccess(Callback):
    """A patient among those of one name, No under "Suspend …?", or ◀ Back → show_patient_access"""

    prefix = "pa:p"
    patient: int


@dataclasses.dataclass(frozen=True)
class AskToSuspend(Callback):
    """Suspend <name>, under a patient's list of who has access → ask_to_suspend"""

    prefix = "pa:s"
    patient: int
    grant: int


@dataclasses.dataclass(frozen=True)
class SuspendAccess(Callback):
    """Yes, suspend, under "Suspend …'s access?" → suspend_access"""

    prefix = "pa:sy"
    patient: int
    grant: int
