"""parse_mode "MarkdownV2" and the legacy "Markdown"."""

from __future__ import annotations

import re
from typing import Any

from playground.emulator.text.entities import (
    SPACE,
    Entity,
    ParseError,
    byte_at,
    checked_link,
    entity,
    w16,
)

_TD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


def _reserved(c: str) -> ParseError:
    return ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")


def _read_url(s: str, i: int) -> tuple[str, int]:
    """Read a MarkdownV2 "(url)" body starting after "(", honouring backslash escapes."""
    chars: list[str] = []
    begin = i
    while i < len(s) and s[i] != ")":
        if s[i] == "\\" and i + 1 < len(s) and 0 < ord(s[i + 1]) <= 126:
            chars.append(s[i + 1])
            i += 2
            continue
        chars.append(s[i])
        i += 1
    if i >= len(s):
        raise ParseError(f"Can't find end of a URL at byte offset {byte_at(s, begin)}")
    return "".join(chars), i


def parse_markdown_v2(s: str) -> tuple[str, list[Entity]]:
    """Port of tdlib's parse_markdown_v2() (reserved characters, nesting, quotes)."""
    n = len(s)

    def at(k: int) -> str:
        return s[k] if k < n else "\0"

    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    stack: list[list[Any]] = []  # [type, argument, utf-16 offset, source index, index in out]
    have_quote, can_start_quote = False, True
    i = 0
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and 0 < ord(s[i + 1]) <= 126:
            out.append(s[i + 1])
            u16 += 1
            if s[i + 1] != "\r":
                can_start_quote = s[i + 1] == "\n"
            i += 2
            continue
        top = stack[-1][0] if stack else None
        reserved = "`" if top in ("code", "pre") else "_*[]()~`>#+-=|{}.!\n"
        if c not in reserved:
            out.append(c)
            u16 += w16(c)
            if c != "\r":
                can_start_quote = False
            i += 1
            continue
        if top is None:
            is_end = False
        elif have_quote and c == "\n" and at(i + 1) != ">":
            is_end = True
        else:
            is_end = {
                "bold": c == "*",
                "italic": c == "_" and at(i + 1) != "_",
                "code": c == "`",
                "pre": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
                "text_link": c == "]",
                "custom_emoji": c == "]",
                "strikethrough": c == "~",
                "underline": c == "_" and at(i + 1) == "_",
                "spoiler": c == "|" and at(i + 1) == "|",
                "blockquote": False,
            }[top]
        if not is_end:
            kind: str | None = None
            arg, source_at = "", i
            if c == "_":
                kind = "underline" if at(i + 1) == "_" else "italic"
                i += kind == "underline"
            elif c in "*~[":
                kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[c]
            elif c == "|" and at(i + 1) == "|":
                kind, i = "spoiler", i + 1
            elif c == "!" and at(i + 1) == "[":
                kind, i = "custom_emoji", i + 1
            elif c == "`" and at(i + 1) == "`" and at(i + 2) == "`":
                kind, i = "pre", i + 3
                lang_end = i
                while at(lang_end) not in SPACE and at(lang_end) != "`":
                    lang_end += 1
                if i != lang_end and lang_end < n and s[lang_end] != "`":
                    arg, i = s[i:lang_end], lang_end
                if at(i) in "\r\n":
                    i += 2 if at(i + 1) in "\r\n" and at(i) != at(i + 1) else 1
                i -= 1
            elif c == "`":
                kind = "code"
            elif c == "\n":
                out.append("\n")
                u16 += 1
                can_start_quote = True
            elif c == ">" and can_start_quote:
                if not have_quote:
                    kind, have_quote = "blockquote", True
            else:
                raise _reserved(c)
            if kind is not None:
                stack.append([kind, arg, u16, source_at, len(out)])
            i += 1
            continue
        kind, arg, offset, source_at, out_at = stack[-1]
        if c == "\n" and kind != "blockquote":
            expandable = kind == "spoiler" and (
                source_at == i - 2 or (source_at == i - 3 and out and out[-1] == "\r")
            )
            if not expandable or stack[-2][0] != "blockquote":
                bad = stack[-1] if not expandable else stack[-2]
                raise ParseError(
                    f"Can't find end of {_TD_NAMES[bad[0]]} entity at byte offset "
                    f"{byte_at(s, bad[3])}"
                )
            stack.pop()
            kind, arg, offset, source_at, out_at = stack[-1]
            kind = "expandable_blockquote"
        skip = u16 == offset
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind == "pre":
            i += 2
        elif kind == "text_link":
            if at(i + 1) == "(":
                url, i = _read_url(s, i + 2)
            else:
                url = "".join(out[out_at:])
            arg = checked_link(url)
            skip = skip or not arg
        elif kind == "custom_emoji":
            if at(i + 1) != "(":
                raise ParseError("The entity must contain a tg://emoji or tg://time URL")
            url, i = _read_url(s, i + 2)
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
            if match is None:
                raise ParseError("Invalid tg://emoji or tg://time URL specified")
            arg = match.group(1)
        elif kind in ("blockquote", "expandable_blockquote"):
            have_quote, can_start_quote, skip = False, True, False
            out.append(c)
            u16 += 1
        if not skip:
            entities.append(entity(kind, offset, u16 - offset, arg))
        stack.pop()
        i += 1
    if have_quote:
        kind = "blockquote"
        if stack[-1][0] == "spoiler" and stack[-1][3] == n - 2:
            stack.pop()
            kind = "expandable_blockquote"
        if stack[-1][0] == "blockquote":
            if u16 > stack[-1][2]:
                entities.append(entity(kind, stack[-1][2], u16 - stack[-1][2]))
            stack.pop()
    if stack:
        raise ParseError(
            f"Can't find end of {_TD_NAMES[stack[-1][0]]} entity at byte offset "
            f"{byte_at(s, stack[-1][3])}"
        )
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def parse_markdown(s: str) -> tuple[str, list[Entity]]:
    """Port of tdlib's legacy parse_markdown() (parse_mode "Markdown")."""
    n = len(s)
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    i = 0
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "_*`[":
            out.append(s[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += w16(c)
            i += 1
            continue
        begin, end_char, is_pre, lang = i, "]" if c == "[" else c, False, ""
        i += 1
        if c == "`" and s[i : i + 2] == "``":
            i, is_pre = i + 2, True
            lang_end = i
            while lang_end < n and s[lang_end] not in SPACE and s[lang_end] != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and s[lang_end] != "`":
                lang, i = s[i:lang_end], lang_end
            if i < n and s[i] in "\r\n":
                i += 2 if s[i + 1 : i + 2] in ("\r", "\n") and s[i + 1] != s[i] else 1
        offset, out_at = u16, len(out)
        while i < n and (s[i] != end_char or (is_pre and s[i + 1 : i + 3] != "``")):
            out.append(s[i])
            u16 += w16(s[i])
            i += 1
        if i >= n:
            raise ParseError(
                f"Can't find end of the entity starting at byte offset {byte_at(s, begin)}"
            )
        if u16 > offset:
            if c == "[":
                url = "".join(out[out_at:])
                if s[i + 1 : i + 2] == "(":
                    close = s.find(")", i + 2)
                    close = n if close < 0 else close
                    url, i = s[i + 2 : close], close
                if url := checked_link(url):
                    entities.append(entity("text_link", offset, u16 - offset, url))
            else:
                kind = {"_": "italic", "*": "bold"}.get(c, "pre" if is_pre else "code")
                entities.append(entity(kind, offset, u16 - offset, lang))
        i += 3 if is_pre else 1
    return "".join(out), entities
