"""What the parsers of every parse_mode share: entities, UTF-16 offsets, links, trimming."""

from __future__ import annotations

import re
from typing import Any


class ParseError(Exception):
    """Becomes "Bad Request: can't parse entities: <message>"."""


Entity = dict[str, Any]
SPACE = " \t\r\n\v\0"  # tdlib's is_space(); "\0" also stands for "end of the string"


def w16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def u16len(s: str) -> int:
    return sum(w16(ch) for ch in s)


def byte_at(s: str, i: int) -> int:
    return len(s[:i].encode("utf-8", "surrogatepass"))


def entity(kind: str, offset: int, length: int, arg: str = "") -> Entity:
    e: Entity = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        e["url"] = arg
    elif kind == "pre" and arg:
        e["language"] = arg
    elif kind == "custom_emoji":
        e["custom_emoji_id"] = arg
    return e


def checked_link(url: str) -> str:
    """Rough LinkManager::get_checked_link: invalid links silently lose their entity."""
    url = url.strip()
    if re.fullmatch(r"(?i)(https?|tg|ton)://\S+", url):
        return url
    if re.fullmatch(r"(?i)[a-z0-9.-]+\.[a-z]{2,}(?:[/?#]\S*)?", url):
        return "http://" + url
    return ""


def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Telegram drops trailing whitespace and leading spaces/newlines outside entities."""
    text = text.rstrip()
    end16 = u16len(text)
    kept: list[Entity] = []
    for e in entities:
        length = min(e["length"], end16 - e["offset"])
        if length > 0:
            kept.append({**e, "length": length})
    first = min((e["offset"] for e in kept), default=end16)
    cut = 0
    while cut < len(text) and cut < first and text[cut] in " \n":
        cut += 1
    return text[cut:], [{**e, "offset": e["offset"] - cut} for e in kept]
