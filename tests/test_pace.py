"""The outbox keeps Telegram's limits (bot/outbox.py Pace): about 30 messages a second in
all, one a second to any one chat. Driven by a clock of its own: the waits it asks for are
what it decided, whatever the machine is doing."""

from __future__ import annotations

import pytest

from bot.outbox import Pace


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds


async def test_a_backlog_to_many_chats_goes_at_30_a_second_without_a_burst() -> None:
    clock = Clock()
    pace = Pace(clock=clock, sleep=clock.sleep)
    for chat in range(60):
        await pace.turn(chat)
    assert clock.waits[0] == pytest.approx(1 / 30)  # the second message already waits
    assert len(clock.waits) == 59
    assert clock.t - 1000.0 == pytest.approx(59 / 30)


async def test_one_chat_gets_one_message_a_second() -> None:
    clock = Clock()
    pace = Pace(clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await pace.turn(7)
    await pace.turn(8)  # another chat is not held back by the first one's second
    assert clock.waits == [1.0, 1.0, pytest.approx(1 / 30)]


async def test_an_edit_is_held_only_by_the_overall_rate() -> None:
    clock = Clock()
    pace = Pace(clock=clock, sleep=clock.sleep)
    await pace.turn(7)
    await pace.turn(7, new_message=False)
    assert clock.waits == [pytest.approx(1 / 30)]


async def test_a_chat_says_how_long_until_its_next_message() -> None:
    clock = Clock()
    pace = Pace(clock=clock, sleep=clock.sleep)
    await pace.turn(7)
    clock.t += 0.25
    assert pace.chat_busy_for(7) == pytest.approx(0.75)
    assert pace.chat_busy_for(8) == 0.0


async def test_nothing_waits_when_there_is_room() -> None:
    clock = Clock()
    pace = Pace(clock=clock, sleep=clock.sleep)
    await pace.turn(1)
    clock.t += 5
    await pace.turn(1)
    assert clock.waits == []
