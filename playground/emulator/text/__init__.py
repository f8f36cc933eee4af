"""Message text as Telegram reads it: a parse_mode's markup becomes plain text and entities,
refused with tdlib's own words when it does not parse, then trimmed as Telegram trims it."""

from __future__ import annotations

from typing import Any

from playground.emulator.errors import bad
from playground.emulator.text.entities import Entity, ParseError, trim
from playground.emulator.text.html import parse_html
from playground.emulator.text.markdown import parse_markdown, parse_markdown_v2

__all__ = ["Entity", "format_text"]


def format_text(raw: str, parse_mode: Any, entities: Any) -> tuple[str, list[Entity]]:
    """The text and entities of `raw` sent with `parse_mode` (or with explicit `entities`)."""
    if len(raw.encode("utf-8", "surrogatepass")) > 32768:
        raise bad("text is too long")
    mode = str(parse_mode or "").lower()
    try:
        if mode == "html":
            text, ents = parse_html(raw)
        elif mode == "markdownv2":
            text, ents = parse_markdown_v2(raw)
        elif mode == "markdown":
            text, ents = parse_markdown(raw)
        elif mode in ("", "none"):
            text, ents = raw, [dict(e) for e in entities or [] if isinstance(e, dict)]
        else:
            raise bad("unsupported parse_mode")
    except ParseError as exc:
        raise bad(f"can't parse entities: {exc}") from None
    return trim(text, ents)
