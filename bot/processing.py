"""How updates are scheduled: different users side by side, each user's one at a time.

A handler spends most of an update waiting for Telegram (each Bot API call is a round
trip), so handling every update in turn caps the whole practice at about 1 / (calls per
update x round trip): a few updates a second (benchmarks/README.md). A conversation,
though, needs one user's updates one by one and in order. So updates of different users
run concurrently, and each user's wait for the one before. What several users change
together (a grant, a request) is kept consistent by the database's transactions.

In polling, one process fetches every update: `OneAtATimePerUser` keeps the order it
fetched them in. Through the webhook, Telegram keeps each queue's order itself (it sends
a chat's next message only once the last one was answered, bot/webhook.py), but a
person's text and tap come in separate queues and may arrive at once, at two workers:
this worker's `TurnLocks` and the database's lock across workers (storage/db.py `user_turn`),
make one wait for the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from storage.db import TurnLocks

# Enough for Telegram's round trips, few enough not to cost CPU: with many users at once,
# PTB's default of 256 made every update dearer, the echo bot's most of all
# (benchmarks/README.md).
MAX_CONCURRENT_UPDATES = 32


def turn_key(update: object) -> int | None:
    """Whose turn an update waits for: its user's (a private chat's id is its user's), else
    its chat's; None for an update of nobody's, which waits for nothing."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None


class OneAtATimePerUser(BaseUpdateProcessor):
    """Polling's scheduler: PTB starts the tasks in the order it fetched the updates, and
    each waits for its user's turn, so a user's updates keep their order."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self.turns = TurnLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        started = False
        try:
            async with self.turns.turn(turn_key(update)):  # updates without a user: in one line
                started = True
                await coroutine
        finally:
            if not started and isinstance(coroutine, Coroutine):
                coroutine.close()  # cancelled while waiting: it will never run

    def busy_users(self) -> set[int]:
        """Users with an update running or waiting for its turn."""
        return self.turns.busy()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
