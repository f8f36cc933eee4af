"""Buttons: a user's tap becomes a callback query, and the bot answers it once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import QUERY_INVALID, bad
from playground.emulator.params import get_bool, get_str
from playground.emulator.users import SimUser
from playground.emulator.waiting import Waiting

_HTML_ESCAPE = re.compile(r"&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);")


@dataclass
class Query:
    user: SimUser  # who tapped: the answer (an alert) is theirs
    chat: Chat  # where the tapped message is: answering counts as the bot's action there
    answered: bool = False


class CallbackMethods(Waiting):
    """Taps on inline buttons, and answerCallbackQuery."""

    def _new_query(self, user: SimUser, chat: Chat) -> str:
        query_id = str(4_000_000_000_000_000_000 + next(self._counter) * 7_919 + user.id)
        self._queries[query_id] = Query(user, chat)
        return query_id

    def _press(self, user: SimUser, chat: Chat, msg: Msg, data: str) -> int:
        """``user`` taps a button with ``data`` on ``msg`` in ``chat``: a callback query."""
        chat._check_tap(user, data)
        if msg.deleted or not msg.from_bot:
            raise AssertionError(f"message #{msg.message_id} is deleted or not the bot's")
        return self._enqueue(
            chat,
            {
                "callback_query": {
                    "id": self._new_query(user, chat),
                    "from": user.user_json(),
                    "message": self._msg_json(chat, msg),
                    "chat_instance": str(-(chat.id * 7919) % 10**18),
                    "data": data,
                }
            },
        )

    async def _tap(
        self,
        user: SimUser,
        chat: Chat,
        label: str,
        message: Msg | None,
        expect: int,
        wait_s: float,
    ) -> list[Msg]:
        msg, button = chat._find_button(label, message)
        if button.callback_data is None:
            if button.url and re.search(r"(t\.me|telegram\.me)/|tg://resolve", button.url):
                return await user.open_link(button.url, expect=expect, timeout=wait_s)
            raise AssertionError(
                f"button {button.text!r} is a {button.kind} button; tapping it "
                f"sends the bot nothing\n{chat.transcript()}"
            )
        update_id = self._press(user, chat, msg, button.callback_data)
        return await self._await_reaction(chat, update_id, expect, wait_s, f"tap({label!r})")

    def _answer(self, p: dict[str, Any]) -> bool:
        query = self._queries.get(get_str(p, "callback_query_id") or "")
        if query is None or query.answered:
            raise bad(QUERY_INVALID)
        text = get_str(p, "text") or None
        if text is not None and len(text) > 200:
            raise bad("MESSAGE_TOO_LONG")
        query.answered = True
        if text is not None and _HTML_ESCAPE.search(text):
            self.garbled.append({"method": "answerCallbackQuery", "text": text})
        query.user.alerts.append((text, get_bool(p, "show_alert")))
        self._record(query.chat, None)
        return True
