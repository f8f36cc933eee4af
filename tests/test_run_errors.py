"""`python -m bot run` with a token Telegram rejects, or no Bot API to reach: one line on
stderr, exit code 2, the token masked, nothing left open."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.botapi import BotAPIServer
from tests.test_cli import run_cli

SECRET = "AAE-not-the-right-one"


def _closed_port() -> int:
    """A port nothing listens on (just released by this process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("command", [("run",), ("run", "--webhook-url", "https://x.example/h")])
async def test_a_rejected_token_is_one_line(
    server: BotAPIServer, tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {
        "PORTAL_BOT_TOKEN": f"654321:{SECRET}",  # the emulator answers 401, as Telegram does
        "PORTAL_API_BASE_URL": server.base_url,
        "PORTAL_DB_PATH": str(tmp_path / "p.db"),
    }
    result = await asyncio.to_thread(run_cli, *command, env=env)
    assert result.returncode == 2, result.stderr
    assert _one_line(result.stderr) == (
        "error: Telegram rejected the token 654321:*** (Unauthorized); check PORTAL_BOT_TOKEN "
        "(from @BotFather)"
    )
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("token", ["abc", f"654321:{SECRET}"])
def test_no_bot_api_to_reach_is_one_line(tmp_path: Path, token: str) -> None:
    base = f"http://127.0.0.1:{_closed_port()}/bot"
    env = {"PORTAL_BOT_TOKEN": token, "PORTAL_API_BASE_URL": base}
    result = run_cli("run", env={**env, "PORTAL_DB_PATH": str(tmp_path / "p.db")})
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith(f"error: cannot reach the Bot API at {base} ("), line
    assert line.endswith("; check the network and PORTAL_API_BASE_URL"), line
    assert SECRET not in result.stderr and "Unclosed" not in result.stderr
    # Looking the bot's name up for invite links says the same, in the same way.
    invite = run_cli(
        "invite",
        "--name",
        "Ann Lee",
        "--dob",
        "1985-02-03",
        env={**env, "PORTAL_DB_PATH": str(tmp_path / "q.db")},
    )
    assert invite.returncode == 2
    assert _one_line(invite.stderr).startswith(f"error: cannot reach the Bot API at {base} (")


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("--workers", "2"), {}, "--workers above 1 needs --webhook-url"),
        (
            ("--workers", "2", "--webhook-url", "https://x.example/h"),
            {},
            "--workers above 1 needs PORTAL_DATABASE_URL",
        ),
        (("--workers", "0"), {}, "--workers must be 1 or more"),
    ],
)
def test_workers_need_the_webhook_and_postgresql(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    """Several workers cannot share a SQLite file nor all poll Telegram: one line, exit 2."""
    base = {"PORTAL_BOT_TOKEN": "123:abc", "PORTAL_DB_PATH": str(tmp_path / "p.db")}
    result = run_cli("run", *args, env=base | env)
    assert result.returncode == 2, result.stderr
    assert _one_line(result.stderr).startswith(f"error: {says}"), result.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PORTAL_BOT_TOKEN": "123:abc", "PORTAL_DB_PATH": str(tmp_path / "p.db")}
        result = run_cli(
            "run", "--webhook-url", "https://x.example/h", "--port", str(port), env=env
        )
    assert result.returncode == 2, result.stderr
    assert _one_line(result.stderr) == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); try another --port"
    )
