"""The access level and role questions, asked the same way wherever access is granted
(adding a patient, sharing a dependent): both options explained, one button each.

Each flow says what a button's data is with a function of the level (or role), normally a
kind's encode (bot/callbacks.py), so the level travels as the enum's value and is decoded
by the kind. A flow may still pass a prefix string: its buttons then end in the old one-letter
code (c/a, v/e), until conversations/ build theirs with kinds (issue #22).
"""

from __future__ import annotations

from collections.abc import Callable

from bot import labels
from bot.callbacks import Callback
from bot.i18n import Translator
from bot.keyboards import Button
from storage.vocabulary import Level, Role

LEVELS = (Level.CLINICAL, Level.ADMINISTRATIVE)
ROLES = (Role.VIEW, Role.EDIT)


def level_question(
    _: Translator, question: str, choose: Callable[[Level], Callback]
) -> tuple[str, list[Button]]:
    """Text and a row of buttons; each button's data is `choose(level)`."""
    levels = (Level.CLINICAL, Level.ADMINISTRATIVE)
    text = "\n".join([question, "", *(labels.level_bullet(_, lv) for lv in levels)])
    row = [Button(labels.level(_, lv), data=choose(lv).encode()) for lv in levels]
    return text, row


def role_question(
    _: Translator, question: str, choose: Callable[[Role], Callback]
) -> tuple[str, list[Button]]:
    """Text and a row of buttons; each button's data is `choose(role)`."""
    roles = (Role.VIEW, Role.EDIT)
    text = "\n".join([question, "", *(labels.role_bullet(_, r) for r in roles)])
    row = [Button(labels.role(_, r), data=choose(r).encode()) for r in roles]
    return text, row
