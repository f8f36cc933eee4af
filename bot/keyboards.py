"""The inline keyboards the bot sends: plain tuples, and one function (`markup_json`) that
turns one into the Bot API's `reply_markup`.

Why not python-telegram-bot's InlineKeyboardButton and InlineKeyboardMarkup: each button's
__init__ sets its ~14 attributes one by one through TelegramObject.__setattr__ (~19 µs a
button here; an update shows ~8), only for the send path to turn them back into dicts. In
a cProfile of the saturation benchmark building them was 4-5% of the bot's CPU. A Button
here is a tuple, made at C speed; tests/test_portalbot.py holds what `markup_json` makes
equal to what PTB would send for the same keyboard.

Telegram's limits stay where they are enforced: 64 bytes of callback data in
bot/callbacks.py (`encode`), 100 buttons a message in the handlers that list people.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Self, overload

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

JSONDict = dict[str, Any]  # as PTB's telegram._utils.types.JSONDict


class _Fields(NamedTuple):
    text: str
    data: str | None
    url: str | None


class Button(_Fields):
    """One inline button: a tap sends `data` back to the bot (callback_data, made by a
    bot/callbacks.py kind's `encode`), or opens `url`; exactly one of the two."""

    __slots__ = ()

    @overload
    def __new__(cls, text: str, data: str) -> Self: ...
    @overload
    def __new__(cls, text: str, *, url: str) -> Self: ...
    def __new__(cls, text: str, data: str | None = None, url: str | None = None) -> Self:
        if (data is None) is (url is None):
            raise ValueError(f"the button {text!r} needs exactly one of data and url")
        return super().__new__(cls, text, data, url)


class Keyboard(tuple[tuple[Button, ...], ...]):
    """A message's inline keyboard: rows of buttons, top to bottom."""

    __slots__ = ()

    def __new__(cls, rows: Iterable[Iterable[Button]] = ()) -> Self:
        return super().__new__(cls, tuple(tuple(row) for row in rows))


def markup_json(keyboard: Keyboard) -> JSONDict:
    """The Bot API's `reply_markup` for this keyboard, as PTB would encode the same one
    (which leaves an empty keyboard out). PortalBot._post calls it for every send."""
    if not keyboard:
        return {}
    return {
        "inline_keyboard": [
            [
                {"text": text, "callback_data": data} if url is None else {"text": text, "url": url}
                for text, data, url in row
            ]
            for row in keyboard
        ]
    }


@overload
def ptb_markup(keyboard: Keyboard) -> InlineKeyboardMarkup: ...
@overload
def ptb_markup(keyboard: None) -> None: ...
@overload
def ptb_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None: ...
def ptb_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    """PTB's own objects for this keyboard, for the few calls that hand one to a PTB method
    typed for them (a reply that quotes in a group, an inline message's edit, a Bot that is
    not PortalBot). Slow, as above, and rare: every other send passes the Keyboard, which
    PortalBot._post turns into JSON with `markup_json`."""
    if keyboard is None:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text, callback_data=data)
                if url is None
                else InlineKeyboardButton(text, url=url)
                for text, data, url in row
            ]
            for row in keyboard
        ]
    )
