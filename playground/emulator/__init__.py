"""The Bot API emulator: the tests drive the bot through it, and `python -m bot playground`
puts a web page in front of it.  See server.py."""

from __future__ import annotations

from playground.emulator.server import (
    PARAMETERS,
    QUIET,
    ApiError,
    BotAPIServer,
    Button,
    Fault,
    Msg,
    SimGroup,
    SimUser,
    start_command,
)

__all__ = [
    "PARAMETERS",
    "QUIET",
    "ApiError",
    "BotAPIServer",
    "Button",
    "Fault",
    "Msg",
    "SimGroup",
    "SimUser",
    "start_command",
]
