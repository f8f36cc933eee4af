"""The access level and role questions, asked the same way wherever access is granted
(adding a patient, sharing a dependent): both options explained, one button each.

Each flow says what a button's data is with a function of the level (or role), normally a
kind's encode (bot/callbacks.py), so the level travels as the enum's value and is decoded
by the kind. A flow may still pass a prefix string: its buttons then end in the old one-letter
code (c/a, v/e), until conversations/ build theirs with kinds (issue #22).
"""

from __future__ import annotations

from collections.abc import Callable

from telegram import InlineKeyboardButton

from bot import labels
from bot.i18n import Translator
from storage.vocabulary import Level, Role

LEVELS = (Level.CLINICAL, Level.ADMINISTRATIVE)
ROLES = (Role.VIEW, Role.EDIT)


def level_question(
    _: Translator, question: str, data: Callable[[Level], str] | str
) -> tuple[str, list[InlineKeyboardButton]]:
    """Text and a row of buttons, one per level; `data(level)` is each button's data."""
    text = "\n".join([question, "", *(labels.level_bullet(_, lv) for lv in LEVELS)])
    made = _letter_after(data) if isinstance(data, str) else data
    row = [InlineKeyboardButton(labels.level(_, lv), callback_data=made(lv)) for lv in LEVELS]
    return text, row


def role_question(
    _: Translator, question: str, data: Callable[[Role], str] | str
) -> tuple[str, list[InlineKeyboardButton]]:
    """Text and a row of buttons, one per role; `data(role)` is each button's data."""
    text = "\n".join([question, "", *(labels.role_bullet(_, r) for r in ROLES)])
    made = _letter_after(data) if isinstance(data, str) else data
    row = [InlineKeyboardButton(labels.role(_, r), callback_data=made(r)) for r in ROLES]
    return text, row


def _letter_after(prefix: str) -> Callable[[Level | Role], str]:
    """The old data, for flows not yet on kinds: the prefix and the value's first letter."""
    return lambda value: prefix + value.value[0]
