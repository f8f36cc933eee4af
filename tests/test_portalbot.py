"""What PortalBot puts on the wire for the bot's keyboards is what PTB would have put there."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import ApproveRequest
from bot.keyboards import Button, Keyboard, markup_json, ptb_markup

# The same keyboard twice: ours, and built with PTB's own types.
OURS = Keyboard(
    [
        [Button("Next ▶", "p:1:2:3"), Button("Site", url="https://x.test/?a=1&b=ü")],
        [Button("✅ Approve", data=ApproveRequest(5).encode())],
        [],
        (Button("Ünïcödé", "x" * 64),),
    ]
)
PTBS = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Next ▶", callback_data="p:1:2:3"),
            InlineKeyboardButton("Site", url="https://x.test/?a=1&b=ü"),
        ],
        [InlineKeyboardButton("✅ Approve", callback_data=ApproveRequest(5).encode())],
        [],
        [InlineKeyboardButton("Ünïcödé", callback_data="x" * 64)],
    ]
)


def test_a_keyboard_is_encoded_as_ptb_encodes_it() -> None:
    assert markup_json(OURS) == PTBS.to_dict()
    assert markup_json(Keyboard()) == InlineKeyboardMarkup([]).to_dict()
    one = Keyboard([[Button("Open a private chat", url="https://t.me/bot")]])
    ptb_one = InlineKeyboardButton("Open a private chat", url="https://t.me/bot")
    assert markup_json(one) == InlineKeyboardMarkup([[ptb_one]]).to_dict()


def test_the_adapter_builds_the_same_keyboard_with_ptb_types() -> None:
    adapted = ptb_markup(OURS)
    assert adapted == PTBS  # PTB compares buttons by text and callback data or url
    assert adapted is not None and adapted.to_dict() == PTBS.to_dict()
    assert ptb_markup(None) is None


def test_a_button_has_exactly_one_of_data_and_url() -> None:
    """What mypy refuses (the overloads) is refused at run time too."""
    with pytest.raises(ValueError, match="exactly one"):
        Button("Both", "x", url="https://x.test")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="exactly one"):
        Button("Neither", None)  # type: ignore[call-overload]
