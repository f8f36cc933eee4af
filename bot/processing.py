"""How updates are scheduled: different users side by side, each user's one at a time.

A handler spends most of an update waiting for Telegram (each Bot API call is a round
trip), so handling every update in turn caps the whole practice at about 1 / (calls per
update x round trip): a few updates a second (benchmarks/README.md). ConversationHandler, though,
needs one user's updates one by one and in order (PTB warns against concurrent updates for
it). So updates of different users run concurrently, and each user's wait for the one
before, in the order Telegram sent them. What several users change together (a grant, a
request) is kept consistent by the database's transactions, as with several workers.
"""

from __future__ import annotations

from asyncio import Lock
from collections.abc import Awaitable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# Enough for Telegram's round trips, few enough not to cost CPU: with many users at once,
# PTB's default of 256 made every update dearer, the echo bot's most of all
# (benchmarks/README.md).
MAX_CONCURRENT_UPDATES = 32


class OneAtATimePerUser(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        # A lock per user with updates in flight, dropped when their last one is done.
        self._locks: dict[int | None, tuple[Lock, list[int]]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        key = user.id if user is not None else None  # updates without a user: in one line
        lock, waiting = self._locks.setdefault(key, (Lock(), [0]))
        waiting[0] += 1
        started = False
        try:
            # asyncio.Lock wakes waiters first come, first served, and PTB starts the tasks
            # in the order it fetched the updates: a user's updates keep their order.
            async with lock:
                started = True
                await coroutine
        finally:
            if not started and isinstance(coroutine, Coroutine):
                coroutine.close()  # cancelled while waiting: it will never run
            waiting[0] -= 1
            if not waiting[0]:
                del self._locks[key]

    def busy_users(self) -> set[int]:
        """Users with an update running or waiting for its turn."""
        return {key for key in self._locks if key is not None}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
