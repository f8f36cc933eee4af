"""parse_mode "HTML"."""

from __future__ import annotations

from playground.emulator.text.entities import (
    SPACE,
    Entity,
    ParseError,
    byte_at,
    checked_link,
    entity,
    w16,
)

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def _html_entity(s: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at s[pos] == '&'; None means "keep the '&' literally"."""
    n, end = len(s), pos + 1
    if end < n and s[end] == "#":
        end += 1
        digits = "0123456789"
        if end < n and s[end] == "x":
            end += 1
            digits += "abcdefABCDEF"
        start = end
        while end < n and s[end] in digits:
            end += 1
        base = 16 if "a" in digits else 10
        code = int(s[start:end], base) if end > start else 0
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
        char = chr(code)
    else:
        start = end
        while end < n and s[end].isascii() and s[end].isalpha():
            end += 1
        found = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(s[start:end])
        if found is None:
            return None
        char = found
    if end < n and s[end] == ";":
        end += 1
    return char, end


def parse_html(s: str) -> tuple[str, list[Entity]]:
    """Port of tdlib's parse_html(): same accepted tags, same error messages."""
    return _HtmlParser(s).parse()


def _tag_argument(tag: str, attr: str, value: str, arg: str) -> str:
    """The entity's argument once ``attr="value"`` is read (``arg`` if it does not count)."""
    if (tag, attr) in {("a", "href"), ("tg-emoji", "emoji-id")}:
        return value
    if tag == "code" and attr == "class" and value.startswith("language-"):
        return value[9:]
    if tag == "span" and attr == "class" and value.startswith("tg-"):
        return value[3:]
    if tag == "blockquote" and attr == "expandable":
        return "1"
    return arg


class _HtmlParser:
    """One pass over ``s``: text and character references go to ``out``; a start tag opens
    an entity on ``stack``, its end tag turns it into one of ``entities``."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)
        self.i = 0
        self.out: list[str] = []
        self.u16 = 0  # length of ``out`` in UTF-16 code units: the entities' offsets
        self.entities: list[Entity] = []
        self.stack: list[tuple[str, str, int, int]] = []  # tag, argument, offset, index in out

    def at(self, k: int) -> str:
        return self.s[k] if k < self.n else "\0"

    def parse(self) -> tuple[str, list[Entity]]:
        while self.i < self.n:
            c = self.s[self.i]
            if c == "&" and (decoded := _html_entity(self.s, self.i)) is not None:
                self.emit(decoded[0])
                self.i = decoded[1]
            elif c != "<":
                self.emit(c)
                self.i += 1
            elif self.at(self.i + 1) != "/":
                self.start_tag()
            else:
                self.end_tag()
        return self.result()

    def emit(self, char: str) -> None:
        self.out.append(char)
        self.u16 += w16(char)

    def skip_spaces(self) -> None:
        while self.i < self.n and self.s[self.i] in SPACE:
            self.i += 1

    def unclosed(self, begin: int, tag: str) -> ParseError:
        return ParseError(f'Unclosed start tag "{tag}" at byte offset {byte_at(self.s, begin)}')

    def start_tag(self) -> None:
        begin = self.i
        self.i += 1
        while self.at(self.i) not in SPACE and self.at(self.i) != ">":
            self.i += 1
        if self.i >= self.n:
            raise ParseError(f"Unclosed start tag at byte offset {byte_at(self.s, begin)}")
        tag = self.s[begin + 1 : self.i].lower()
        if tag not in _HTML_TAGS:
            raise ParseError(
                f'Unsupported start tag "{tag}" at byte offset {byte_at(self.s, begin)}'
            )
        arg = self.attributes(tag, begin)
        if tag == "span" and arg != "spoiler":
            raise ParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_at(self.s, begin)}'
            )
        self.stack.append((tag, arg, self.u16, len(self.out)))
        self.i += 1

    def attributes(self, tag: str, begin: int) -> str:
        """Read the attributes up to the tag's ">"; the entity's argument (a link, ...)."""
        arg = ""
        while self.at(self.i) != ">":
            self.skip_spaces()
            if self.at(self.i) == ">":
                break
            attr = self.attribute_name(tag, begin)
            self.skip_spaces()
            if self.at(self.i) != "=":
                if self.i >= self.n:
                    raise self.unclosed(begin, tag)
                if tag == "blockquote" and attr == "expandable":
                    arg = "1"
                continue
            self.i += 1
            self.skip_spaces()
            if self.i >= self.n:
                raise self.unclosed(begin, tag)
            value = self.attribute_value()
            if self.i >= self.n:
                raise ParseError(f"Unclosed start tag at byte offset {byte_at(self.s, begin)}")
            arg = _tag_argument(tag, attr, value, arg)
        return arg

    def attribute_name(self, tag: str, begin: int) -> str:
        attr_begin = self.i
        while self.at(self.i) not in SPACE and self.at(self.i) not in "=>/\"'":
            self.i += 1
        attr = self.s[attr_begin : self.i]
        if not attr:
            raise ParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {byte_at(self.s, begin)}'
            )
        return attr

    def attribute_value(self) -> str:
        """A bare name token (lowercased) or a quoted value (character references decoded)."""
        s, n = self.s, self.n
        if self.at(self.i) not in "'\"":
            token_begin = self.i
            while self.at(self.i).isascii() and (
                self.at(self.i).isalnum() or self.at(self.i) in ".-"
            ):
                self.i += 1
            if self.at(self.i) not in SPACE and self.at(self.i) != ">":
                raise ParseError(
                    f"Unexpected end of name token at byte offset {byte_at(s, token_begin)}"
                )
            return s[token_begin : self.i].lower()
        quote = s[self.i]
        self.i += 1
        chars: list[str] = []
        while self.i < n and s[self.i] != quote:
            if s[self.i] == "&" and (decoded := _html_entity(s, self.i)) is not None:
                chars.append(decoded[0])
                self.i = decoded[1]
                continue
            chars.append(s[self.i])
            self.i += 1
        self.i += 1 if self.i < n else 0
        return "".join(chars)

    def end_tag(self) -> None:
        begin = self.i
        self.i += 1
        if not self.stack:
            raise ParseError(f"Unexpected end tag at byte offset {byte_at(self.s, begin)}")
        while self.at(self.i) not in SPACE and self.at(self.i) != ">":
            self.i += 1
        end_tag = self.s[begin + 2 : self.i].lower()
        self.skip_spaces()
        if self.at(self.i) != ">":
            raise ParseError(f"Unclosed end tag at byte offset {byte_at(self.s, begin)}")
        tag, arg, offset, out_at = self.stack.pop()
        if end_tag and end_tag != tag:
            raise ParseError(
                f"Unmatched end tag at byte offset {byte_at(self.s, begin)}, expected "
                f'"</{tag}>", found "</{end_tag}>"'
            )
        self.i += 1
        if self.u16 - offset > 0:
            self.close(tag, arg, offset, out_at)

    def close(self, tag: str, arg: str, offset: int, out_at: int) -> None:
        """The entity of a closed, non-empty tag (a <pre><code class=...> pair is one)."""
        entities, length = self.entities, self.u16 - offset
        last = entities[-1] if entities else None
        same = last is not None and (last["offset"], last["length"]) == (offset, length)
        if tag in _HTML_SIMPLE:
            entities.append(entity(_HTML_SIMPLE[tag], offset, length))
        elif tag == "tg-emoji":
            if not arg.isdigit() or int(arg) == 0:
                raise ParseError("Invalid custom emoji identifier specified")
            entities.append(entity("custom_emoji", offset, length, arg))
        elif tag == "a":
            url = checked_link(arg or "".join(self.out[out_at:]))
            if url:
                entities.append(entity("text_link", offset, length, url))
        elif tag == "pre":
            if same and last is not None and last["type"] == "code" and last.get("_lang"):
                entities[-1] = entity("pre", offset, length, last["_lang"])
            else:
                entities.append(entity("pre", offset, length))
        elif tag == "code":
            if same and last is not None and last["type"] == "pre" and arg:
                last["language"] = arg
            else:
                entities.append(entity("code", offset, length) | ({"_lang": arg} if arg else {}))
        elif tag == "blockquote":
            entities.append(
                entity("expandable_blockquote" if arg else "blockquote", offset, length)
            )
        # tg-time is accepted but produces no entity here

    def result(self) -> tuple[str, list[Entity]]:
        if self.stack:
            raise ParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"'
            )
        text = "".join(self.out)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                "Text contains invalid Unicode characters after decoding HTML "
                "entities, check for unmatched surrogate code units"
            ) from None
        for e in self.entities:
            e.pop("_lang", None)
        return text, sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
