"""Refusals, worded as the Bot API server (tdlib/telegram-bot-api) words them."""

from __future__ import annotations

from typing import Any

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
BLOCKED = "Forbidden: bot was blocked by the user"


class ApiError(Exception):
    """A refusal, worded exactly as the Bot API words it (``strict``: one the emulator
    adds, see the module's docstring)."""

    def __init__(
        self,
        code: int,
        description: str,
        *,
        record: bool = True,
        strict: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.record = record
        self.strict = strict
        self.retry_after = retry_after  # a flood wait's seconds, in the answer's parameters

    def answer(self) -> dict[str, Any]:
        """The Bot API's answer: ok false, the code, the words, and any parameters."""
        out: dict[str, Any] = {"ok": False, "error_code": self.code}
        out["description"] = self.description
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad(text: str) -> ApiError:
    """400 "Bad Request: <text>"."""
    return ApiError(400, f"Bad Request: {text}")
