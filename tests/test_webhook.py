"""`python -m bot run --webhook-url …`: updates arrive by POST, and only with the secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.botapi import BotAPIServer, SimUser

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-token_for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _update(update_id: int, user_id: int, text: str) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Web", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Web"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


@dataclass
class Hook:
    url: str
    output: list[str] = field(default_factory=list)  # the process's log, once it ended

    @property
    def log(self) -> str:
        return "".join(self.output)


@asynccontextmanager
async def webhook_bot(
    server: BotAPIServer, tmp_path: Path, port: int | None = None
) -> AsyncIterator[Hook]:
    """`python -m bot run --webhook-url …` against the emulator, from the moment it takes
    updates (its log says "Application started") until SIGINT, which must end it cleanly."""
    port = port or _free_port()
    hook = Hook(f"http://127.0.0.1:{port}/hook")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {
        "PORTAL_BOT_TOKEN": server.token,
        "PORTAL_API_BASE_URL": server.base_url,
        "PORTAL_DB_PATH": str(tmp_path / "p.db"),
        "PORTAL_WEBHOOK_SECRET": SECRET,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--webhook-url",
        hook.url,
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not hook.output or "Application started" not in hook.output[-1]:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(hook.output)  # it ended before taking updates
                hook.output.append(line)
        assert server.webhook_url == hook.url
        # As in polling: being added to a group is an update the bot must get, to leave it.
        assert server.allowed_updates == ["message", "callback_query", "my_chat_member"]
        yield hook
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        hook.output.append(out.decode())
    assert proc.returncode == 0, hook.log
    assert "Traceback" not in hook.log, hook.log


async def _post(http: aiohttp.ClientSession, hook: Hook, body: object, secret: str) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    async with http.post(hook.url, json=body, headers=headers) as r:
        return r.status


async def _answered(server: BotAPIServer, user: SimUser, count: int = 1) -> None:
    """Until the bot has sent `user` that many messages (webhook updates have no
    update_id of the emulator's to wait on)."""
    revision = server.revision
    async with asyncio.timeout(10):
        while len(user.bot_messages) < count:
            revision = await server.wait_change(revision)


async def test_webhook_mode_checks_the_secret_token(server: BotAPIServer, tmp_path: Path) -> None:
    user = server.user(880, "Web")
    user.started = True  # as if they had opened the bot before
    async with webhook_bot(server, tmp_path) as hook, aiohttp.ClientSession() as http:
        assert await _post(http, hook, _update(1, 880, "/help"), "") == 403  # no secret
        assert await _post(http, hook, _update(2, 880, "/help"), "wrong") == 403
        assert not user.bot_messages
        async with http.post(
            hook.url,
            data=json.dumps(_update(3, 880, "/help")),
            headers={
                "X-Telegram-Bot-Api-Secret-Token": SECRET,
                "Content-Type": "application/json",
            },
        ) as r:
            assert r.status == 200
        await _answered(server, user)
        assert user.last.text.startswith("What I can do"), user.transcript()


async def test_an_update_that_cannot_be_parsed_is_taken_and_skipped(
    server: BotAPIServer, tmp_path: Path
) -> None:
    """Answered 200, so that Telegram moves on; logged by its update_id and why, without
    its content; the next update is served."""
    user = server.user(880, "Web")
    user.started = True
    broken = _update(41, 881, "Cat Lee 1979-04-12 cat@example.com")
    del broken["message"]["date"]  # type: ignore[attr-defined]
    async with webhook_bot(server, tmp_path) as hook, aiohttp.ClientSession() as http:
        assert await _post(http, hook, broken, SECRET) == 200
        assert await _post(http, hook, {"update_id": 42, "brand_new_kind": {}}, SECRET) == 200
        assert await _post(http, hook, _update(43, 880, "/help"), SECRET) == 200
        await _answered(server, user)
        assert user.last.text.startswith("What I can do"), user.transcript()
        assert len(user.bot_messages) == 1
    assert "skipped update 41: cannot parse it (KeyError)" in hook.log, hook.log
    for private in ("Cat Lee", "1979", "cat@example.com"):
        assert private not in hook.log, hook.log
    assert "CRITICAL" not in hook.log and "ERROR" not in hook.log, hook.log


async def test_telegram_delivers_by_webhook_and_the_webhook_is_set_once(
    server: BotAPIServer, tmp_path: Path
) -> None:
    """The emulator posts each update to the webhook as Telegram does (answered only once
    handled); a restart finds the webhook this deployment set and does not set it again,
    and keeps taking updates with the same secret."""
    user = server.user(881, "Web")
    port = _free_port()
    async with webhook_bot(server, tmp_path, port):
        reply = await user.send("/help")
        assert reply and reply[-1].text.startswith("What I can do"), user.transcript()
    assert [call for call, _ in server.calls].count("setWebhook") == 1
    assert server.webhook_deliveries[-1][2] == 200
    async with webhook_bot(server, tmp_path, port):
        reply = await user.send("/help")
        assert reply and reply[-1].text.startswith("What I can do"), user.transcript()
    assert [call for call, _ in server.calls].count("setWebhook") == 1
