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
    return _MarkdownV2Parser(s).parse()


_RESERVED = "_*[]()~`>#+-=|{}.!\n"


class _MarkdownV2Parser:
    """One pass over ``s``: a reserved character either ends the innermost open entity or
    opens a new one on ``stack``; everything else, and escaped characters, is text."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)
        self.i = 0
        self.out: list[str] = []
        self.u16 = 0  # length of ``out`` in UTF-16 code units: the entities' offsets
        self.entities: list[Entity] = []
        # [type, argument, utf-16 offset, source index, index in out]
        self.stack: list[list[Any]] = []
        self.have_quote = False
        self.can_start_quote = True  # at the start of a line: ">" would open a quote

    def at(self, k: int) -> str:
        return self.s[k] if k < self.n else "\0"

    def parse(self) -> tuple[str, list[Entity]]:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c == "\\" and self.i + 1 < n and 0 < ord(s[self.i + 1]) <= 126:
                self.escaped(s[self.i + 1])
                continue
            top = self.stack[-1][0] if self.stack else None
            reserved = "`" if top in ("code", "pre") else _RESERVED
            if c not in reserved:
                self.plain(c)
            elif self.ends(c, top):
                self.close(c)
            else:
                self.open(c)
        return self.result()

    def escaped(self, char: str) -> None:
        self.out.append(char)
        self.u16 += 1
        if char != "\r":
            self.can_start_quote = char == "\n"
        self.i += 2

    def plain(self, c: str) -> None:
        self.out.append(c)
        self.u16 += w16(c)
        if c != "\r":
            self.can_start_quote = False
        self.i += 1

    def ends(self, c: str, top: str | None) -> bool:
        """Whether ``c`` at ``i`` closes the innermost open entity, of type ``top``."""
        if top is None:
            return False
        at = self.at
        if self.have_quote and c == "\n" and at(self.i + 1) != ">":
            return True
        return {
            "bold": c == "*",
            "italic": c == "_" and at(self.i + 1) != "_",
            "code": c == "`",
            "pre": c == "`" and at(self.i + 1) == "`" and at(self.i + 2) == "`",
            "text_link": c == "]",
            "custom_emoji": c == "]",
            "strikethrough": c == "~",
            "underline": c == "_" and at(self.i + 1) == "_",
            "spoiler": c == "|" and at(self.i + 1) == "|",
            "blockquote": False,
        }[top]

    def open(self, c: str) -> None:
        """A reserved character that opens an entity, starts a line or is refused."""
        at, i = self.at, self.i
        kind: str | None = None
        arg, source_at = "", i
        if c == "_":
            kind = "underline" if at(i + 1) == "_" else "italic"
            self.i += kind == "underline"
        elif c in "*~[":
            kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[c]
        elif c == "|" and at(i + 1) == "|":
            kind, self.i = "spoiler", i + 1
        elif c == "!" and at(i + 1) == "[":
            kind, self.i = "custom_emoji", i + 1
        elif c == "`" and at(i + 1) == "`" and at(i + 2) == "`":
            kind, arg = "pre", self.open_pre()
        elif c == "`":
            kind = "code"
        elif c == "\n":
            self.out.append("\n")
            self.u16 += 1
            self.can_start_quote = True
        elif c == ">" and self.can_start_quote:
            if not self.have_quote:
                kind, self.have_quote = "blockquote", True
        else:
            raise _reserved(c)
        if kind is not None:
            self.stack.append([kind, arg, self.u16, source_at, len(self.out)])
        self.i += 1

    def open_pre(self) -> str:
        """After "```": its language, if any, and the line break that follows; ``i`` is
        left on the last character read."""
        s, n, at = self.s, self.n, self.at
        i = self.i + 3
        arg = ""
        lang_end = i
        while at(lang_end) not in SPACE and at(lang_end) != "`":
            lang_end += 1
        if i != lang_end and lang_end < n and s[lang_end] != "`":
            arg, i = s[i:lang_end], lang_end
        if at(i) in "\r\n":
            i += 2 if at(i + 1) in "\r\n" and at(i) != at(i + 1) else 1
        self.i = i - 1
        return arg

    def close(self, c: str) -> None:
        kind, arg, offset, _, out_at = self.stack[-1]
        if c == "\n" and kind != "blockquote":
            kind, arg, offset = self.end_expandable_quote()
        skip = self.u16 == offset
        if kind in ("underline", "spoiler"):
            self.i += 1
        elif kind == "pre":
            self.i += 2
        elif kind == "text_link":
            if self.at(self.i + 1) == "(":
                url, self.i = _read_url(self.s, self.i + 2)
            else:
                url = "".join(self.out[out_at:])
            arg = checked_link(url)
            skip = skip or not arg
        elif kind == "custom_emoji":
            arg = self.emoji_id()
        elif kind in ("blockquote", "expandable_blockquote"):
            self.have_quote, self.can_start_quote, skip = False, True, False
            self.out.append(c)
            self.u16 += 1
        if not skip:
            self.entities.append(entity(kind, offset, self.u16 - offset, arg))
        self.stack.pop()
        self.i += 1

    def end_expandable_quote(self) -> tuple[str, str, int]:
        """A line break inside a quote's last entity: only "||" right before it (an
        expandable quote's mark) may be open; it goes, and the quote ends."""
        kind, _, _, source_at, _ = self.stack[-1]
        i, out = self.i, self.out
        expandable = kind == "spoiler" and (
            source_at == i - 2 or (source_at == i - 3 and out and out[-1] == "\r")
        )
        if not expandable or self.stack[-2][0] != "blockquote":
            bad = self.stack[-1] if not expandable else self.stack[-2]
            raise ParseError(
                f"Can't find end of {_TD_NAMES[bad[0]]} entity at byte offset "
                f"{byte_at(self.s, bad[3])}"
            )
        self.stack.pop()
        _, arg, offset, _, _ = self.stack[-1]
        return "expandable_blockquote", arg, offset

    def emoji_id(self) -> str:
        """The id in "](tg://emoji?id=...)" after a custom emoji's text."""
        if self.at(self.i + 1) != "(":
            raise ParseError("The entity must contain a tg://emoji or tg://time URL")
        url, self.i = _read_url(self.s, self.i + 2)
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if match is None:
            raise ParseError("Invalid tg://emoji or tg://time URL specified")
        return match.group(1)

    def result(self) -> tuple[str, list[Entity]]:
        stack, n = self.stack, self.n
        if self.have_quote:
            kind = "blockquote"
            if stack[-1][0] == "spoiler" and stack[-1][3] == n - 2:
                stack.pop()
                kind = "expandable_blockquote"
            if stack[-1][0] == "blockquote":
                if self.u16 > stack[-1][2]:
                    self.entities.append(entity(kind, stack[-1][2], self.u16 - stack[-1][2]))
                stack.pop()
        if stack:
            raise ParseError(
                f"Can't find end of {_TD_NAMES[stack[-1][0]]} entity at byte offset "
                f"{byte_at(self.s, stack[-1][3])}"
            )
        return "".join(self.out), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


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
            is_pre = True
            i, lang = _pre_header(s, i + 2)
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


def _pre_header(s: str, i: int) -> tuple[int, str]:
    """After a legacy "```": where the code starts, and the language if one is named."""
    n, lang = len(s), ""
    lang_end = i
    while lang_end < n and s[lang_end] not in SPACE and s[lang_end] != "`":
        lang_end += 1
    if i != lang_end and lang_end < n and s[lang_end] != "`":
        lang, i = s[i:lang_end], lang_end
    if i < n and s[i] in "\r\n":
        i += 2 if s[i + 1 : i + 2] in ("\r", "\n") and s[i + 1] != s[i] else 1
    return i, lang
