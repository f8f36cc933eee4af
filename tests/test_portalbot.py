"""What PortalBot puts on the wire by its fast paths is what PTB would have put there."""

from __future__ import annotations

from telegram import (
    CallbackGame,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LoginUrl,
    SwitchInlineQueryChosenChat,
    WebAppInfo,
)

from bot.portalbot import markup_json


def test_a_keyboard_is_encoded_as_ptb_encodes_it() -> None:
    button = InlineKeyboardButton
    markup = InlineKeyboardMarkup(
        [
            [button("Next ▶", callback_data="p:1:2:3"), button("Site", url="https://x.test")],
            [
                button("Copy", copy_text=CopyTextButton("code")),
                button("Open", web_app=WebAppInfo("https://a.test")),
            ],
            [button("Log in", login_url=LoginUrl("https://b.test", forward_text="hi"))],
            [button("Play", callback_game=CallbackGame()), button("Pay", pay=True)],
            [
                button("Inline", switch_inline_query=""),
                button("Here", switch_inline_query_current_chat="q"),
            ],
            [
                button(
                    "Chosen",
                    switch_inline_query_chosen_chat=SwitchInlineQueryChosenChat(
                        "q", allow_user_chats=True
                    ),
                )
            ],
            [button("Extra", callback_data="x", api_kwargs={"future_field": 1})],
        ]
    )
    assert markup_json(markup) == markup.to_dict()
    assert markup_json(InlineKeyboardMarkup([])) == InlineKeyboardMarkup([]).to_dict()
