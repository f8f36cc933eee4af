"""Bot API calls that fail on purpose, planted by a test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playground.emulator.params import chat_id_of


@dataclass
class Fault:
    """A Bot API call that goes wrong on purpose (tests): the next `times` calls of `method`
    (to `chat_id`, with `text` in the message, when given) fail with `code`. With
    `deliver`, the call takes effect first and only its answer is lost, as when Telegram
    accepted a message and the connection then broke. `then`, if given, runs when the
    fault fires (a test kills the bot there). With `retry_after`, the refusal is Telegram's
    flood wait: code 429 and the seconds to wait in its `parameters`."""

    method: str
    code: int = 502
    description: str = "Bad Gateway"
    chat_id: int | None = None
    text: str | None = None
    deliver: bool = False
    times: int = 1
    then: Callable[[], object] | None = None
    retry_after: int | None = None
    fired: int = 0

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.fired >= self.times or method.lower() != self.method.lower():
            return False
        if self.chat_id is not None and chat_id_of(params) != self.chat_id:
            return False
        return self.text is None or self.text in str(params.get("text", ""))


@dataclass
class Hold:
    """A Bot API call held before it takes effect until the test opens the hold (tests):
    the next `times` calls of `method` (to `chat_id`, when given). `reached` is set when a
    call is held, so the test knows the bot is in the middle of that update."""

    method: str
    chat_id: int | None = None
    times: int = 1
    fired: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.fired >= self.times or method.lower() != self.method.lower():
            return False
        return self.chat_id is None or chat_id_of(params) == self.chat_id
