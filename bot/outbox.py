"""Delivering the outbox (storage/outbox.py): what a change owes people reaches them.

Rows an update queued are sent at the end of that update (so a notice goes as soon as the
change is made); a background task sends everything else: rows whose send failed, rows
queued by a process that died, rows released when someone signs in or comes back. Words
are made when a row is sent (handlers/notices.py), from the state at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.keyboards import Keyboard, ptb_markup
from bot.portalbot import PortalBot, replies_now
from storage import Database, outbox
from storage.db import Leadership, Writes, now

log = logging.getLogger(__name__)

IDLE_CHECK_S = 1.0  # how often the background sender looks for rows nobody woke it for
MAX_BACKOFF_S = 300
BATCH = 50
# Telegram's limits for a bot's messages: about 30 a second in all, and about one a second
# to any one chat (core.telegram.org/bots/faq). PTB's AIORateLimiter also holds the first
# for every call, but lets a burst through before it does, and knows nothing of chats.
PER_SECOND = 30.0
PER_CHAT_S = 1.0


class Pace:
    """Spaces what the background sender sends (reminders, the policy's notices, a
    backlog): never faster than `per_second` in all, nor more than one message per
    `per_chat_s` to one chat. Each send takes the next free moment before it waits (in
    this process; several workers would each keep their own)."""

    def __init__(
        self,
        per_second: float = PER_SECOND,
        per_chat_s: float = PER_CHAT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gap = 1.0 / per_second
        self.per_chat_s = per_chat_s
        self.clock = clock  # real elapsed time, not the portal's clock: this is a rate
        self.sleep = sleep
        self._next_any = 0.0
        self._next_in: dict[int, float] = {}

    def chat_busy_for(self, chat_id: int) -> float:
        """Seconds until this chat may get its next new message (0: it may now)."""
        return max(0.0, self._next_in.get(chat_id, 0.0) - self.clock())

    async def turn(self, chat_id: int, *, new_message: bool = True) -> None:
        """Wait for this chat's next free moment within the bot's overall rate. An edit
        (a card showing its outcome) is not a new message in the chat: only the overall
        rate holds it."""
        now_s = self.clock()
        at = max(now_s, self._next_any)
        if new_message:
            at = max(at, self._next_in.get(chat_id, 0.0))
            self._next_in[chat_id] = at + self.per_chat_s
        self._next_any = at + self.gap
        if len(self._next_in) > 10_000:  # chats not written to for a second need no entry
            self._next_in = {c: t for c, t in self._next_in.items() if t > now_s}
        if at > now_s:
            await self.sleep(at - now_s)


@dataclass(frozen=True)
class Outgoing:
    """One Bot API call: a new message, or an edit of one sent before."""

    chat_id: int
    text: str
    markup: Keyboard | None = None
    edit_message_id: int | None = None


class Unreachable:
    """The recipient has no chat with the bot yet (not signed in): hold the row."""


UNREACHABLE = Unreachable()


@dataclass(frozen=True)
class Later:
    """Not yet: the recipient's quiet hours end at `at` (seconds since the epoch)."""

    at: int


@dataclass(frozen=True)
class Drop:
    """Not sent, and why, for counting ('quiet': a short reminder in quiet hours, ...).
    A renderer's None is a drop without a reason (nothing to say any more)."""

    why: str


Rendered = Outgoing | Unreachable | Later | Drop | None
Render = Callable[[outbox.Message], Awaitable[Rendered]]


class Sender:
    def __init__(self, db: Database, bot: Bot, render: Render | None = None) -> None:
        self.db = db
        self.bot = bot
        self.render: Render = render or _nothing  # set once the words can be made
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.pace = Pace()
        # Rows let pass while their chat had a message a moment ago: row -> when (Pace's
        # clock) it may go.
        self._resting: dict[int, float] = {}
        # Whether this worker sends what the bot sends on its own (and does the other timed
        # work): one worker of the cluster at a time; on SQLite, always.
        self.lead = Leadership()

    # -- lifecycle
    async def start(self) -> None:
        if self._task is None:
            self.lead = await self.db.leader("timed work").__aenter__()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            leading, self.lead = self.lead, Leadership()
            await leading.__aexit__(None, None, None)  # another worker's check takes over

    def wake(self) -> None:
        self._wake.set()

    # -- sending
    async def deliver(self, ids: Iterable[int]) -> None:
        """Send these rows now, in order; any that fail stay for the background sender."""
        for message_id in ids:
            await self.send_one(message_id)

    async def release(self, *, patient_id: int | None = None, chat_id: int | None = None) -> None:
        """A recipient can be reached again: what was held for them goes out at the end
        of this update (storage/outbox.py release())."""
        async with self.db.transaction(change=False) as conn:
            await outbox.release(conn, patient_id=patient_id, chat_id=chat_id)

    async def send_one(self, message_id: int, *, paced: bool = False) -> None:
        async with self.db.transaction(change=False) as conn:
            row = await outbox.claim(conn, message_id)
        if row is None:
            return  # sent, held or dropped already, or another sender holds it
        try:
            await self._send(row, paced)
        except Exception:
            # Never lose a row to a bug in its words: it is tried again after a back-off,
            # and the log says which row (never its content).
            log.exception("outbox row %s (%s) could not be sent", row.id, row.kind)
            await self._retry(row)

    async def _send(self, row: outbox.Message, paced: bool) -> None:
        if row.lapses_at is not None and row.lapses_at <= now():
            await self._settle(outbox.mark_dropped, row.id)
            return
        out = await self.render(row)
        if out is None or isinstance(out, Drop):
            await self._drop(row.id, out.why if out else None)
            return
        if isinstance(out, Later):
            await self._later(row, out.at)
            return
        if isinstance(out, Unreachable):
            await self._hold_until_signed_in(row)
            return
        try:
            if paced:
                new_message = out.edit_message_id is None
                busy = self.pace.chat_busy_for(out.chat_id) if new_message else 0.0
                if busy > 0:  # that chat had one a moment ago: the others go first
                    self._resting[row.id] = self.pace.clock() + busy
                    await self._settle(outbox.unclaim, row.id)
                    return
                await self.pace.turn(out.chat_id, new_message=new_message)
            sent_id = await self._call(out)
        except Forbidden:
            await self._hold(row, out.chat_id, "blocked")
            return
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else delay
            await self._retry(row, int(seconds) + 1)
            return
        except BadRequest as exc:
            if "not modified" in exc.message:
                sent_id = None
            elif "chat not found" in exc.message.lower():
                await self._hold(row, out.chat_id, "no_chat")
                return
            else:
                log.warning("outbox row %s (%s) refused: %s", row.id, row.kind, exc.message)
                await self._settle(outbox.mark_dropped, row.id)
                return
        except TelegramError as exc:  # network errors and timeouts: maybe later
            log.info("outbox row %s (%s) not sent yet: %s", row.id, row.kind, type(exc).__name__)
            await self._retry(row)
            return
        async with self.db.transaction(change=False) as conn:
            await outbox.mark_sent(conn, row.id, out.chat_id, sent_id)

    async def _call(self, out: Outgoing) -> int | None:
        """The id of the message sent or edited (None if the Bot API answered without one)."""
        with replies_now():
            result = await self._api(out)
        if isinstance(result, Message):
            return result.message_id
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id if isinstance(message_id, int) else None

    async def _api(self, out: Outgoing) -> Message | dict[str, object] | bool | None:
        bot = self.bot
        if isinstance(bot, PortalBot):  # the raw answer: only its message id is kept
            if out.edit_message_id is not None:
                return await bot.edit_text(out.chat_id, out.edit_message_id, out.text, out.markup)
            return await bot.send_text(out.chat_id, out.text, out.markup)
        if out.edit_message_id is not None:
            return await bot.edit_message_text(
                out.text,
                chat_id=out.chat_id,
                message_id=out.edit_message_id,
                reply_markup=ptb_markup(out.markup),
            )
        return await bot.send_message(out.chat_id, out.text, reply_markup=ptb_markup(out.markup))

    async def _later(self, row: outbox.Message, at: int) -> None:
        async with self.db.transaction(change=False) as conn:
            await outbox.postpone(conn, row.id, at)
        self.wake()

    async def _hold(self, row: outbox.Message, chat_id: int, why: str) -> None:
        if row.keep:
            async with self.db.transaction(change=False) as conn:
                await outbox.hold(conn, row.id, chat_id)
        else:  # time-bound: by the time they are back it would be stale (counted, not kept)
            await self._drop(row.id, why)

    async def _drop(self, message_id: int, why: str | None) -> None:
        async with self.db.transaction(change=False) as conn:
            await outbox.mark_dropped(conn, message_id, why)

    async def _hold_until_signed_in(self, row: outbox.Message) -> None:
        if not row.keep:
            await self._settle(outbox.mark_dropped, row.id)
            return
        async with self.db.transaction(change=False) as conn:
            held = await outbox.hold_until_signed_in(conn, row.id)
        if not held:  # they signed in while it was being worded: word it again now
            await self._retry(row, 0)

    async def _retry(self, row: outbox.Message, delay_s: int | None = None) -> None:
        delay = delay_s if delay_s is not None else min(MAX_BACKOFF_S, 2**row.attempts)
        async with self.db.transaction(change=False) as conn:
            await outbox.retry_later(conn, row.id, delay)
        self.wake()

    async def _settle(
        self, mark: Callable[[Writes, int], Awaitable[None]], message_id: int
    ) -> None:
        async with self.db.transaction(change=False) as conn:
            await mark(conn, message_id)

    # -- the background sender
    async def _run(self) -> None:
        while True:
            try:
                # What the bot sends on its own goes from one worker at a time, which keeps
                # Telegram's pace for the bot as a whole; the others send only what their
                # own updates owe, and take over if that worker dies.
                if await self.lead.check():
                    await self._drain()
                timeout = await self._until_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbox sender failed; trying again shortly")
                timeout = IDLE_CHECK_S
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _drain(self) -> None:
        while True:
            moment = self.pace.clock()
            self._resting = {i: t for i, t in self._resting.items() if t > moment}
            async with self.db.read() as conn:
                rows = await outbox.due(conn, BATCH, tuple(self._resting))
            if not rows:
                return
            for row in rows:
                # What the bot sends on its own keeps Telegram's pace; what an update owes
                # (a card, a decision) went at the end of that update, at once.
                await self.send_one(row.id, paced=True)
            if len(rows) < BATCH:
                return

    async def _until_next(self) -> float:
        async with self.db.read() as conn:
            at = await outbox.next_due_at(conn)
        rested = min(self._resting.values(), default=None)
        if rested is not None:  # a row let pass goes when its chat is free again
            return max(0.05, min(IDLE_CHECK_S, rested - self.pace.clock()))
        if at is None:
            return IDLE_CHECK_S
        return max(0.05, min(IDLE_CHECK_S, at - now()))


async def _nothing(row: outbox.Message) -> None:
    return None
