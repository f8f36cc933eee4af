"""`python -m bot run --webhook-url …`: updates arrive by POST, and only with the secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp

from tests.botapi import BotAPIServer

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


async def test_webhook_mode_checks_the_secret_token(server: BotAPIServer, tmp_path: Path) -> None:
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/hook"
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
        hook,
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    user = server.user(880, "Web")
    user.started = True  # as if they had opened the bot before
    try:
        for _ in range(100):
            if server.webhook_url == hook:
                break
            await asyncio.sleep(0.1)
        assert server.webhook_url == hook
        # As in polling: being added to a group is an update the bot must get, to leave it.
        assert server.allowed_updates == ["message", "callback_query", "my_chat_member"]
        async with aiohttp.ClientSession() as http:
            for _ in range(50):  # the webhook server starts right after setWebhook
                try:
                    async with http.post(hook, json=_update(1, 880, "/help")) as r:
                        refused = r.status
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            assert refused == 403  # no secret
            async with http.post(
                hook,
                json=_update(2, 880, "/help"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            ) as r:
                assert r.status == 403
            assert not user.bot_messages
            async with http.post(
                hook,
                data=json.dumps(_update(3, 880, "/help")),
                headers={
                    "X-Telegram-Bot-Api-Secret-Token": SECRET,
                    "Content-Type": "application/json",
                },
            ) as r:
                assert r.status == 200
        for _ in range(50):
            if user.bot_messages:
                break
            await asyncio.sleep(0.1)
        assert user.last.text.startswith("What I can do"), user.transcript()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out
