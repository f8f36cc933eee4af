"""Conversations left unanswered end after PORTAL_CONVERSATION_TIMEOUT, across workers.

A conversation's deadline is its last step plus the timeout, from its stored step time.
Two ways end it, and a conditional DELETE of its row lets exactly one of them win:

- the user's next update, when it comes after the deadline: the flow's timeout message,
  then the update is handled as any other (`load_user_state`);
- a timed job on every worker (`sweep_timed_out_flows`), a moment after the deadline: it
  claims what passed and tells each user through the outbox, then takes the buttons off
  the open prompt. The moment (one sweep interval) leaves an update that read the
  conversation just before its deadline the time to store its step first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from telegram import Update

from bot import userstate
from bot.context import Portal, PortalContext, portal, read_identity
from bot.events import FlowTimedOut
from bot.i18n import Translator, translator
from bot.notifier import notify
from bot.outbox import Outgoing, Rendered
from conversations import FLOW_LANGUAGE, FLOWS, PROMPTS, remove_buttons
from storage import outbox, state
from storage.outbox import Message

log = logging.getLogger(__name__)

SWEEP_EVERY_MAX_S = 5.0


def sweep_every(timeout_s: float) -> float:
    """How often the job looks for conversations past their deadline, and how long after it
    it takes them: a quarter of the timeout, 5 seconds at most."""
    return min(SWEEP_EVERY_MAX_S, timeout_s / 4)


def _away(_: Translator) -> str:
    return _(
        "You didn't finish what you started before I restarted, and it has timed out: "
        "nothing was sent or created. You can start again at any time."
    )


async def load_user_state(update: Update, context: PortalContext) -> None:
    """Before any handler, in one read: the user's stored state for this update (a
    redelivered update ends here) and who is asking (`context.caller`); a flow they left
    past its deadline ends, and they hear so first."""
    async with context.portal.db.read() as conn:  # one snapshot, one BEGIN and COMMIT
        rows = await userstate.read(conn, update)
        found = await read_identity(conn, update)
    loaded = userstate.load(update, context, rows)
    context.resolve_caller(update, found)  # after load: a language chosen before signing in
    if loaded is None:
        return
    await userstate.end_timed_out(context, loaded, context.portal.settings.conversation_timeout)
    in_flow = {name for name, _chat in loaded.conversations}
    for over in FLOWS.values():  # a flow that is over keeps no draft
        if over.name not in in_flow:
            loaded.data.pop(over.key, None)
    if not loaded.ended:
        return
    for name, chat_id in loaded.ended:
        flow = FLOWS.get(name)
        if flow is not None:
            await flow.timed_out(context, chat_id)
        else:
            await context.bot.send_message(chat_id, _away(context.caller._))


@dataclass(frozen=True)
class Sweeping:
    """The job's data: when this worker started (a deadline that passed before then passed
    while no worker ran, and the message says so)."""

    started_ms: int


@dataclass(frozen=True)
class _Closing:
    chat_id: int
    prompt: int


async def sweep_timed_out_flows(context: PortalContext) -> None:
    """A repeating job on every worker: the conversations past their deadline, each
    claimed by one worker and told once."""
    assert context.job is not None and isinstance(context.job.data, Sweeping)
    started_ms = context.job.data.started_ms
    p = portal(context.application)
    timeout_ms = round(p.settings.conversation_timeout * 1000)
    before = userstate.now_ms() - timeout_ms - round(sweep_every(timeout_ms / 1000) * 1000)
    closing: list[_Closing] = []
    try:
        outbox.collect()
        async with p.db.transaction(change=False) as conn:
            claimed = await state.claim_timed_out(conn, before)
            stored = await state.user_data_of(conn, sorted({c.user_id for c in claimed}))
            for user_id, ends in groupby(
                sorted(claimed, key=lambda c: c.user_id), lambda c: c.user_id
            ):
                old = stored.get(user_id)
                data: dict[str, Any] = json.loads(old) if old else {}
                for c in ends:
                    chat_id = int(json.loads(c.key)[0])
                    away = c.stepped_at_ms + timeout_ms < started_ms
                    locale = data.get(FLOW_LANGUAGE)
                    key = f"{c.key}:{c.name}:{c.stepped_at_ms}"
                    language = locale if isinstance(locale, str) else None
                    await notify(conn, FlowTimedOut(chat_id, c.name, key, away, language))
                    prompt = data.get(PROMPTS, {}).pop(c.name, None)
                    if isinstance(prompt, int):
                        closing.append(_Closing(chat_id, prompt))
                    flow = FLOWS.get(c.name)
                    if flow is not None:
                        data.pop(flow.key, None)
                if old is not None:  # its draft goes with it, unless their update wrote
                    await state.replace_user_data(conn, user_id, old, json.dumps(data))
        await p.sender.deliver(outbox.collected())
        for close in closing:
            await remove_buttons(context.bot, close.chat_id, close.prompt)
    except Exception:
        log.exception("could not end the conversations past their deadline")


async def flow_timed_out(p: Portal, row: Message) -> Rendered:
    """The user of a conversation left unanswered: the flow's own timeout message, in the
    language of their last step in it (or that it ended while the bot was away)."""
    if row.chat_id is None:
        return None
    locale = row.detail.get("locale")
    _ = translator(locale if isinstance(locale, str) else None, p.settings.default_locale)
    flow = FLOWS.get(str(row.detail.get("flow")))
    text = _away(_) if row.detail.get("away") or flow is None else flow.said_on_timeout(_)
    return Outgoing(row.chat_id, text)
