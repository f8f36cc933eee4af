"""bot/dispatch.py's Table finds, for every update, the entry (and the check result) that
offering the update to each entry of bot/app.py's table in turn would find."""

from __future__ import annotations

import re

import pytest
from telegram import Bot, Update
from telegram.ext import CommandHandler

from bot.app import commands_and_buttons
from bot.callbacks import Callback
from bot.dispatch import Button, Table
from tests.botapi import BotAPIServer
from tests.test_callbacks import _largest


def _comparable(check: object) -> object:
    # CallbackQueryHandler answers a fresh re.Match each time: compare what it matched.
    if isinstance(check, re.Match):
        return (check.re.pattern, check.groups())
    return check


def _scan(entries: list[CommandHandler[object, None] | Button], update: Update) -> object:
    for entry in entries:
        check = entry.check_update(update)
        if check is not None and check is not False:
            return (entry, _comparable(check))
    return None


async def test_the_table_finds_what_trying_each_entry_in_turn_finds(
    server: BotAPIServer,
) -> None:
    entries = commands_and_buttons()
    table = Table(entries)
    commands = sorted(c for e in entries if isinstance(e, CommandHandler) for c in e.commands)
    texts = [
        f"/{command}{tail}"
        for command in commands
        for tail in ("", " two words", f"@{server.bot_username}", "@another_bot")
    ]
    texts += ["/START", "/nothing", "hello", "/", "a /start"]
    taps = [_largest(kind).encode() for kind in Callback.kinds]
    taps += [data + ":1" for data in taps] + ["x" + data for data in taps]
    taps += ["nonsense", "home", "home:", ":", "lang:xx"]
    ann = server.user(1040, "Ann")
    async with Bot(server.token, base_url=server.base_url) as bot:
        for text in texts:
            ann.type_text(text)
        await bot.send_message(ann.id, "buttons")
        for data in taps:
            ann.press(ann.last, data)
        updates: list[Update] = []
        while batch := await bot.get_updates(
            offset=updates[-1].update_id + 1 if updates else None, timeout=0
        ):
            updates += batch
    assert len(updates) == len(texts) + len(taps)
    meant: dict[str, object] = {
        f"/{c}{tail}": e
        for e in entries
        if isinstance(e, CommandHandler)
        for c in e.commands
        for tail in ("", " two words", f"@{server.bot_username}")
    }
    meant |= {_largest(e.kind).encode(): e for e in entries if isinstance(e, Button)}
    for update, sent in zip(updates, texts + taps, strict=True):
        match = table.check_update(update)
        got = None if match is None else (match.handler, _comparable(match.check))
        assert got == _scan(entries, update), sent
        if sent in meant:  # each command as typed, and the data of each kind in the table
            assert match is not None and match.handler is meant[sent], sent


async def test_a_tap_without_data_reaches_no_entry(server: BotAPIServer) -> None:
    """PTB's CallbackQueryHandler takes a query without data whatever its pattern, so the
    scan gave it to the first button in the table; the table leaves it to the handler of
    old or forged buttons after it (bot/app.py)."""
    ann = server.user(1041, "Ann")
    ann.started = True  # the bot may write first
    async with Bot(server.token, base_url=server.base_url) as bot:
        await bot.send_message(ann.id, "buttons")
        ann.press(ann.last, "")
        [update] = await bot.get_updates(timeout=0)
    assert update.callback_query is not None and update.callback_query.data == ""
    assert Table(commands_and_buttons()).check_update(update) is None


def test_two_entries_for_one_command_are_refused() -> None:
    entries = commands_and_buttons()
    again = next(e for e in entries if isinstance(e, CommandHandler))
    with pytest.raises(ValueError, match="two entries"):
        Table([*entries, again])
