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

import dataclasses
import enum
import re
import typing
from functools import cache
from typing import Any, ClassVar, Self

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
        parts = [self.prefix, *(_encode_field(getattr(self, f.name)) for f in _fields(type(self)))]
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
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


@cache
def _hints(cls: type[Callback]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _regex(cls: type[Callback]) -> re.Pattern[str]:
    hints = _hints(cls)
    parts = [re.escape(cls.prefix), *(f"({_field_regex(hints[f.name])})" for f in _fields(cls))]
    # \Z, not $: PTB matches with re.match, and $ would also accept a trailing newline.
    return re.compile("^" + ":".join(parts) + r"\Z")


def _field_regex(hint: Any) -> str:
    if hint is int:
        return _INT
    if hint is bool:
        return "[01]"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "|".join(re.escape(str(m.value)) for m in hint)
    if hint is str:
        return _WORD
    raise TypeError(f"a callback field must be int, bool, str or an enum, not {hint!r}")


def _encode_field(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


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


# Reminders, new-item notices and /notifications (handlers/reminders.py,
# handlers/notifications.py)
# Imported here to keep this section in one piece; parse() reads field types from globals.
from storage.notifications import Item, Topic  # noqa: E402


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
