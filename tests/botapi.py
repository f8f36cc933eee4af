"""The tests' name for the Bot API emulator, which lives in playground/emulator/ so that
`python -m bot playground` can serve it too.  One implementation, two doors."""

from __future__ import annotations

from playground.emulator import (
    PARAMETERS,
    QUIET,
    ApiError,
    BotAPIServer,
    Button,
    Fault,
    Hold,
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
    "Hold",
    "Msg",
    "SimGroup",
    "SimUser",
    "start_command",
]
