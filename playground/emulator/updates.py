"""Delivering updates to the bot: the queue, getUpdates (long polling, offsets, the 409 for
a second poller), allowed_updates, and the webhook methods that switch polling off."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from playground.emulator.chats import Chat
from playground.emulator.errors import CONFLICT, ApiError, bad
from playground.emulator.params import get_bool, get_int, get_str
from playground.emulator.state import ServerState

# Sent only to a bot that lists them in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class Poll:
    """One waiting getUpdates request; woken by a new update, a newer poll or stop()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: web.Request) -> None:
        self.request = request
        self.wake: asyncio.Future[None] = loop.create_future()
        self.superseded = False

    def poke(self) -> None:
        if not self.wake.done():
            self.wake.set_result(None)


class UpdateQueue(ServerState):
    """Updates wait here until the bot fetches them; the bot's own methods for it."""

    def enqueue_raw(self, payload: dict[str, Any]) -> int:
        """Queue an update exactly as given, with the next update_id added, whether the
        bot can make sense of it or not (a field missing, a kind of update from a newer
        Bot API); its update_id. Nobody's chat waits for a reaction to it."""
        return self._enqueue(None, payload)

    def _enqueue(self, chat: Chat | None, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._pending.append({"update_id": update_id, **payload})
        if chat is not None:
            self._update_owner[update_id] = chat
        self._last_enqueued = update_id
        if self._poll is not None:
            self._poll.poke()
        self._updates_added()
        self._touch()
        return update_id

    def _updates_added(self) -> None:
        """A new update waits: the webhook's delivery (webhook.py) takes it from here."""

    async def _get_updates(self, p: dict[str, Any], request: web.Request) -> list[Any]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = get_int(p, "offset") or 0
        limit = min(max(get_int(p, "limit") or 100, 1), 100)
        try:
            timeout = max(float(p.get("timeout") or 0), 0.0)
        except ValueError:
            raise bad("timeout must be a Number") from None
        self._set_allowed_updates(p)
        self._forget_confirmed(offset)
        poll = self._take_over_polling(request)
        try:
            batch = await self._next_batch(poll, limit, timeout)
        finally:
            if self._poll is poll:
                self._poll = None
        for update in batch:
            self._mark_fetched(update["update_id"])
        return batch

    def _forget_confirmed(self, offset: int) -> None:
        """A positive offset confirms every update before it; a negative one keeps only
        the last -offset updates."""
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]

    def _take_over_polling(self, request: web.Request) -> Poll:
        """This request becomes the one waiting; Telegram answers the *older* request with
        the conflict."""
        poll, old = Poll(asyncio.get_running_loop(), request), self._poll
        self._poll = poll
        if old is not None:
            old.superseded = True
            old.poke()
        return poll

    async def _next_batch(self, poll: Poll, limit: int, wait_s: float) -> list[Any]:
        """Up to ``limit`` updates as soon as there are any; none after ``wait_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            if poll.superseded:
                transport = poll.request.transport
                alive = transport is not None and not transport.is_closing()
                raise ApiError(409, CONFLICT, record=alive)
            self._drop_unwanted()
            batch = self._pending[:limit]
            remaining = deadline - loop.time()
            if batch or self._stopping or remaining <= 0:
                return batch
            if poll.wake.done():
                poll.wake = loop.create_future()
            await asyncio.wait({poll.wake}, timeout=remaining)

    def _mark_fetched(self, update_id: int) -> None:
        """The bot has the update (or Telegram dropped it): its reaction counts from here."""
        owner = self._update_owner.get(update_id)
        self._fetch_marks.setdefault(update_id, len(owner._events) if owner else 0)
        self._last_fetched = max(self._last_fetched, update_id)

    def _set_allowed_updates(self, p: dict[str, Any]) -> None:
        """Kept until the bot asks again; an empty list means Telegram's default."""
        allowed = p.get("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list) or not all(isinstance(k, str) for k in allowed):
            raise bad("can't parse allowed updates JSON object")
        self.allowed_updates = list(allowed) or None

    def _drop_unwanted(self) -> None:
        """Telegram does not keep updates of a kind the bot did not ask for; by default,
        every kind but chat_member and message reactions."""
        kept = []
        for update in self._pending:
            kind = next(k for k in update if k != "update_id")
            if self.allowed_updates is None:
                wanted = kind not in _OPT_IN_UPDATES
            else:
                wanted = kind in self.allowed_updates
            if wanted:
                kept.append(update)
            else:  # gone for good: a wait for nothing from the bot is over
                self._dropped[update["update_id"]] = kind
                self._mark_fetched(update["update_id"])
        self._pending = kept

    def _delete_webhook(self, p: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if get_bool(p, "drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, p: dict[str, Any]) -> bool:
        self._set_allowed_updates(p)
        self.webhook_url = get_str(p, "url") or ""
        if self._poll is not None:
            self._poll.poke()
        return True

    def _webhook_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
