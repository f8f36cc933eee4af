"""Delivering updates by webhook, as Telegram's Bot API server does (telegram-bot-api's
WebhookActor): once setWebhook gave a URL, each update is POSTed there with the secret
token, and getUpdates is refused.

What several workers must cope with, kept here as Telegram keeps it:

* One queue per key: messages are keyed by chat, button presses by the user who pressed
  (a separate queue), and a queue's next update goes only once the one before it was
  answered. A person's text and tap can therefore be in flight at once.
* At most ``max_connections`` deliveries at a time, all queues together.
* An update not answered 200 (an error status, a refused or dropped connection, no answer
  within ``webhook_timeout_s``) is sent again after a back-off that doubles.

``webhook_targets`` stands in for a load balancer: when set, deliveries go round-robin to
those URLs instead of the webhook's own, so consecutive updates reach different workers.
TLS certificates are not checked (a deployment's self-signed one, docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from playground.emulator.params import get_int, get_str
from playground.emulator.updates import UpdateQueue

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's own: 40 by default, 1..100.
DEFAULT_MAX_CONNECTIONS = 40
# The user id's offset for button presses' queues (Client.cpp: user_id + (3 << 33)).
_TAP_QUEUE = 3 << 33


def queue_key(update: dict[str, Any]) -> int:
    """Which of Telegram's queues an update waits in."""
    query = update.get("callback_query")
    if isinstance(query, dict):
        return int(query["from"]["id"]) + _TAP_QUEUE
    for kind, body in update.items():
        if kind != "update_id" and isinstance(body, dict) and isinstance(body.get("chat"), dict):
            return int(body["chat"]["id"])
    return 0


class WebhookDelivery(UpdateQueue):
    """POSTs pending updates to the webhook, queue by queue."""

    # Short by default: a test's bot is on the same machine. Telegram's are ~60 s.
    webhook_timeout_s = 60.0
    webhook_retry_s = 0.05
    webhook_retry_cap_s = 2.0

    @property
    def delivering(self) -> bool:
        """Updates are owed to the webhook (in flight, or waiting for their turn)."""
        return bool(self.webhook_url) and bool(self._pending or self._in_delivery)

    def delivered(self, update_id: int) -> bool:
        """The webhook answered this update 200 (or nothing is delivered by webhook)."""
        if not self.webhook_url:
            return True
        return update_id not in self._in_delivery and all(
            u["update_id"] != update_id for u in self._pending
        )

    def _updates_added(self) -> None:
        self._deliver_pending()

    def _set_webhook(self, p: dict[str, Any]) -> bool:
        done = super()._set_webhook(p)
        self.webhook_secret = get_str(p, "secret_token") or ""
        self.webhook_max_connections = min(
            max(get_int(p, "max_connections") or DEFAULT_MAX_CONNECTIONS, 1), 100
        )
        self._deliver_pending()
        return done

    def _deliver_pending(self) -> None:
        """Start a delivery for the head of every queue that has none in flight."""
        if not self.webhook_url or self._stopping:
            return
        self._drop_unwanted()
        loop = asyncio.get_running_loop()
        heads: set[int] = set()
        for update in list(self._pending):
            key = queue_key(update)
            if key in heads or key in self._busy_queues:
                continue  # behind an earlier update of its queue
            heads.add(key)
            update_id = update["update_id"]
            if len(self._in_delivery) >= self.webhook_max_connections:
                return
            if self._retry_at.get(update_id, 0.0) > loop.time():
                self._retry_later(self._retry_at[update_id] - loop.time())
                continue
            self._in_delivery.add(update_id)
            self._busy_queues.add(key)
            self._mark_fetched(update_id)
            self._deliveries.add(task := loop.create_task(self._deliver(update, key)))
            task.add_done_callback(self._deliveries.discard)

    def _retry_later(self, delay: float) -> None:
        if self._retry_timer is not None and not self._retry_timer.cancelled():
            return
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._retry_timer = None
            self._deliver_pending()

        self._retry_timer = loop.call_later(max(delay, 0.0), due)

    async def _deliver(self, update: dict[str, Any], key: int) -> None:
        update_id = update["update_id"]
        targets = self.webhook_targets or [self.webhook_url]
        url = targets[next(self._round_robin) % len(targets)]
        status: int | None = None
        self._inflight += 1
        self._touch()
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=False, limit=100)
                )
            headers = {SECRET_HEADER: self.webhook_secret} if self.webhook_secret else {}
            async with self._http.post(
                url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout_s),
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("webhook delivery of %s to %s failed: %r", update_id, url, exc)
        finally:
            self.webhook_deliveries.append((update_id, url, status))
            self._in_delivery.discard(update_id)
            self._busy_queues.discard(key)
            if status == 200:
                self._pending = [u for u in self._pending if u["update_id"] != update_id]
                self._retry_at.pop(update_id, None)
                self._attempts.pop(update_id, None)
                self._last_fetched = max(self._last_fetched, update_id)
            else:
                tries = self._attempts[update_id] = self._attempts.get(update_id, 0) + 1
                delay = min(self.webhook_retry_s * 2 ** (tries - 1), self.webhook_retry_cap_s)
                self._retry_at[update_id] = asyncio.get_running_loop().time() + delay
                self._retry_later(delay)
            self._inflight -= 1
            self._touch()
            if not self._stopping:
                self._deliver_pending()

    async def _close_webhook(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None
