"""`python -m bot …` as an operator runs it: real processes, real database files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_run_without_a_token_says_so_in_one_line(tmp_path: Path) -> None:
    result = run_cli("run", env={"PORTAL_DB_PATH": str(tmp_path / "p.db")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: PORTAL_BOT_TOKEN is not set (get one from @BotFather)"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORTAL_INVITE_TTL_DAYS", "fourteen"),
        ("PORTAL_INVITE_TTL_DAYS", "0"),
        ("PORTAL_TIMEZONE", "Mars/Olympus"),
        ("PORTAL_DEFAULT_LOCALE", "xx_YY"),
        ("PORTAL_API_BASE_URL", "api.telegram.org"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = run_cli(
        "migrate",
        env={variable: value, "PORTAL_BOT_TOKEN": "1:x", "PORTAL_DB_PATH": str(tmp_path / "p.db")},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {variable} is invalid"), lines


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    env = {"PORTAL_DB_PATH": str(tmp_path / "p.db")}
    first = run_cli("migrate", env=env)
    second = run_cli("migrate", env=env)
    versions = sorted(int(f.name[:4]) for f in (ROOT / "storage" / "migrations").glob("*.sql"))
    assert versions[:2] == [1, 2]
    assert first.returncode == 0
    assert f"applied migrations {', '.join(map(str, versions))}" in first.stdout
    assert second.returncode == 0 and "up to date" in second.stdout
    with sqlite3.connect(tmp_path / "p.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == versions


def test_add_practitioner_and_invite_one_patient(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    env = {"PORTAL_DB_PATH": str(db)}
    added = run_cli("add-practitioner", "--telegram-id", "42", "--name", "Dr Rao", env=env)
    assert added.returncode == 0, added.stderr
    made = run_cli(
        "invite",
        "--name",
        "Ann Lee",
        "--dob",
        "1985-02-03",
        "--email",
        "ann@example.com",
        "--bot-username",
        "@portal_bot",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    name, link = made.stdout.strip().split("\t")
    assert name == "Ann Lee"
    assert link.startswith("https://t.me/portal_bot?start=")
    token = link.split("=", 1)[1]
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM invites")]
        assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
        assert conn.execute("SELECT count(*) FROM practitioners").fetchone()[0] == 1


def test_invite_needs_a_bot_username_or_a_token(tmp_path: Path) -> None:
    result = run_cli(
        "invite",
        "--name",
        "Ann",
        "--dob",
        "1985-02-03",
        env={"PORTAL_DB_PATH": str(tmp_path / "p.db")},
    )
    assert result.returncode == 2 and "--bot-username" in result.stderr


def test_invite_looks_up_the_bot_username_with_the_token(tmp_path: Path) -> None:
    from tests.botapi import BotAPIServer

    async def scenario() -> subprocess.CompletedProcess[str]:
        server = BotAPIServer(bot_username="practice_helper_bot")
        await server.start()
        try:
            env = {
                "PORTAL_DB_PATH": str(tmp_path / "p.db"),
                "PORTAL_BOT_TOKEN": server.token,
                "PORTAL_API_BASE_URL": server.base_url,
            }
            return await asyncio.to_thread(
                run_cli, "invite", "--name", "Ann", "--dob", "1985-02-03", env=env
            )
        finally:
            await server.stop()

    result = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    assert "https://t.me/practice_helper_bot?start=" in result.stdout


def test_csv_invites_every_row(tmp_path: Path) -> None:
    sheet = tmp_path / "patients.csv"
    sheet.write_text(
        "name,dob,email\nAnn Lee,1985-02-03,ann@example.com\nBo Tran,1990-12-30,\n\n"
        "Chi Nguyen,2001-07-04,chi@example.com\n",
        encoding="utf-8",
    )
    db = tmp_path / "p.db"
    result = run_cli(
        "invite", "--csv", str(sheet), "--bot-username", "b", env={"PORTAL_DB_PATH": str(db)}
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == ["Ann Lee", "Bo Tran", "Chi Nguyen"]
    assert len({r[1] for r in rows}) == 3
    assert count(db, "invites") == 3 and count(db, "patients") == 3


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("name,dob\nAnn,1985-02-03\nBo,30/12/1990\n", 3),
        ("name,dob\nAnn,1985-02-03\n,1990-12-30\n", 3),
        ("name,dob,email\nAnn,1985-02-03,not-an-email\n", 2),
        ("name,dob\nAnn,1985-02-03,extra,cells\n", 2),
        ("naam,geboren\nAnn,1985-02-03\n", 1),
        ("name,dob\nAnn,2999-01-01\n", 2),
    ],
)
def test_a_bad_csv_row_is_named_and_nothing_is_written(
    tmp_path: Path, content: str, line: int
) -> None:
    sheet = tmp_path / "patients.csv"
    sheet.write_text(content, encoding="utf-8")
    db = tmp_path / "p.db"
    result = run_cli(
        "invite", "--csv", str(sheet), "--bot-username", "b", env={"PORTAL_DB_PATH": str(db)}
    )
    assert result.returncode == 1
    assert f"line {line}:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    if db.exists():
        assert count(db, "invites") == 0 and count(db, "patients") == 0


def test_help_describes_each_command() -> None:
    for command in ("run", "migrate", "add-practitioner", "invite", "unlink"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: python -m bot" in result.stdout
    invite_help = run_cli("invite", "--help").stdout
    assert "--csv" in invite_help and "--bot-username" in invite_help
