"""The one clock everything reads the time from.

In production it is the system's clock, read afresh every time: a process whose wall clock
is moved forward (faketime, a VM snapshot) behaves as it would on that day. Tests swap in a
clock they move themselves (`with clock.use(FixedClock(...)) as fixed: fixed.advance(...)`)
instead of sleeping or patching `time`.

Durations (timeouts, back-offs measured with time.monotonic) are not "what time is it" and
do not come through here; asyncio's and the job queue's timers run on real time.
"""

from __future__ import annotations

import datetime as dt
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def time(self) -> float:
        return _time.time()


class FixedClock:
    """A clock that stands still until moved: for tests, and for `python -m bot sweep --at`."""

    def __init__(self, at: float | dt.datetime) -> None:
        self._at = at.timestamp() if isinstance(at, dt.datetime) else float(at)

    def time(self) -> float:
        return self._at

    def set(self, at: float | dt.datetime) -> None:
        self._at = at.timestamp() if isinstance(at, dt.datetime) else float(at)

    def advance(self, seconds: float = 0, *, days: float = 0) -> None:
        self._at += seconds + days * 86400


SYSTEM = SystemClock()
_current: Clock = SYSTEM
C = TypeVar("C", bound=Clock)


def current() -> Clock:
    return _current


@contextmanager
def use(clock: C) -> Iterator[C]:
    """Read the time from `clock` inside the block (the whole process: the bot under test
    runs in the test's own event loop)."""
    global _current
    before, _current = _current, clock
    try:
        yield clock
    finally:
        _current = before


def time() -> float:
    """Seconds since the epoch, as a float (deadlines)."""
    return _current.time()


def now() -> int:
    """Seconds since the epoch; every timestamp in the database uses this unit."""
    return int(_current.time())


def today(tz: dt.tzinfo | None = None) -> dt.date:
    """Today's date in `tz` (None: the computer's local time zone, as date.today())."""
    return dt.datetime.fromtimestamp(_current.time(), tz).date()


def moment(tz: dt.tzinfo) -> dt.datetime:
    """Now, as an aware date and time in `tz`."""
    return dt.datetime.fromtimestamp(_current.time(), tz)
