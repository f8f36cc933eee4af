"""Single-use secrets for deep links: random, short enough for Telegram, stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets

# 24 random bytes = 192 bits, 32 URL-safe characters: well inside the 64-character
# start payload Telegram allows, and only from its alphabet A-Z a-z 0-9 _ -.
TOKEN_BYTES = 24
START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def is_start_payload(text: str) -> bool:
    return bool(START_PAYLOAD.match(text))


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={token}"
