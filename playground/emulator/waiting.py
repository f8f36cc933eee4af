"""How a test (or the page) waits for the bot: until it fetched an update, reacted to it in
that chat, and went quiet; never for a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playground.emulator.chats import Chat, Msg
from playground.emulator.webhook import WebhookDelivery

QUIET = 0.05


class Waiting(WebhookDelivery):
    """Waiting for the bot's reaction to an update, or for it to go idle."""

    async def _settle(self, ready: Callable[[], bool], quiet: float, wait_s: float) -> bool:
        """Wait until ``ready()`` holds and no request was in flight or arrived for ``quiet``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            now = loop.time()
            delay = deadline - now
            if ready() and self._inflight == 0:
                idle = now - self._last_activity
                if idle >= quiet:
                    return True
                delay = min(delay, quiet - idle)
            if delay <= 0 or self._tick is None:
                return False
            await asyncio.wait({self._tick}, timeout=delay)

    async def wait_idle(
        self,
        quiet: float = QUIET,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the tests' API
    ) -> None:
        """Wait until every update was fetched and the bot made no request for ``quiet``."""
        if not await self._settle(
            lambda: self._last_fetched >= self._last_enqueued and not self.delivering,
            quiet,
            timeout,
        ):
            raise AssertionError(
                f"server not idle after {timeout}s: {self._inflight} requests in flight, "
                f"updates up to {self._last_enqueued} enqueued, up to {self._last_fetched} "
                "fetched"
            )

    async def _await_reaction(
        self, chat: Chat, update_id: int, expect: int, wait_s: float, action: str
    ) -> list[Msg]:
        errors_before = len(self.errors)

        def ready() -> bool:
            mark = self._fetch_marks.get(update_id)
            return (
                mark is not None
                and len(chat._events) - mark >= expect
                and self.delivered(update_id)
            )

        if not await self._settle(ready, QUIET, wait_s):
            got = self._what_came(chat, update_id)
            raise AssertionError(
                f"{action} timed out after {wait_s}s waiting for {expect} bot events ({got}); "
                f"refused requests meanwhile: {self.errors[errors_before:]}; transcript:\n"
                f"{chat.transcript()}"
            )
        return self._reaction(chat, update_id)

    def _what_came(self, chat: Chat, update_id: int) -> str:
        """Why a wait for the bot's reaction ran out, for its failure message."""
        mark = self._fetch_marks.get(update_id)
        if update_id in self._dropped:
            return (
                f"Telegram dropped the update: {self._dropped[update_id]!r} is not in the "
                f"bot's allowed_updates {self.allowed_updates}"
            )
        if mark is None:
            return "the bot never fetched the update"
        return f"got {len(chat._events) - mark}"

    def _reaction(self, chat: Chat, update_id: int) -> list[Msg]:
        """The bot's messages sent or edited in ``chat`` since it fetched the update (each
        once, as it is now), deleted ones left out."""
        seen: dict[int, Msg] = {}
        for m in chat._events[self._fetch_marks[update_id] :]:
            if m is not None and not m.deleted:
                seen.setdefault(m.message_id, m)
        return list(seen.values())
