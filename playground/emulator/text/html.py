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
    n = len(s)

    def at(k: int) -> str:
        return s[k] if k < n else "\0"

    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf-16 offset, index in out
    i = 0
    while i < n:
        c = s[i]
        if c == "&" and (decoded := _html_entity(s, i)) is not None:
            out.append(decoded[0])
            u16 += w16(decoded[0])
            i = decoded[1]
            continue
        if c != "<":
            out.append(c)
            u16 += w16(c)
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != "/":
            while at(i) not in SPACE and at(i) != ">":
                i += 1
            if i >= n:
                raise ParseError(f"Unclosed start tag at byte offset {byte_at(s, begin)}")
            tag = s[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise ParseError(
                    f'Unsupported start tag "{tag}" at byte offset {byte_at(s, begin)}'
                )
            arg = ""
            while at(i) != ">":
                while i < n and s[i] in SPACE:
                    i += 1
                if at(i) == ">":
                    break
                attr_begin = i
                while at(i) not in SPACE and at(i) not in "=>/\"'":
                    i += 1
                attr = s[attr_begin:i]
                if not attr:
                    raise ParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{byte_at(s, begin)}"
                    )
                while i < n and s[i] in SPACE:
                    i += 1
                if at(i) != "=":
                    if i >= n:
                        raise ParseError(
                            f'Unclosed start tag "{tag}" at byte offset {byte_at(s, begin)}'
                        )
                    if tag == "blockquote" and attr == "expandable":
                        arg = "1"
                    continue
                i += 1
                while i < n and s[i] in SPACE:
                    i += 1
                if i >= n:
                    raise ParseError(
                        f'Unclosed start tag "{tag}" at byte offset {byte_at(s, begin)}'
                    )
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = s[token_begin:i].lower()
                    if at(i) not in SPACE and at(i) != ">":
                        raise ParseError(
                            f"Unexpected end of name token at byte offset {byte_at(s, token_begin)}"
                        )
                else:
                    quote = s[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and s[i] != quote:
                        if s[i] == "&" and (decoded := _html_entity(s, i)) is not None:
                            chars.append(decoded[0])
                            i = decoded[1]
                            continue
                        chars.append(s[i])
                        i += 1
                    i += 1 if i < n else 0
                    value = "".join(chars)
                if i >= n:
                    raise ParseError(f"Unclosed start tag at byte offset {byte_at(s, begin)}")
                if (tag, attr) in {("a", "href"), ("tg-emoji", "emoji-id")}:
                    arg = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    arg = value[9:]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    arg = value[3:]
                elif tag == "blockquote" and attr == "expandable":
                    arg = "1"
            if tag == "span" and arg != "spoiler":
                raise ParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {byte_at(s, begin)}'
                )
            stack.append((tag, arg, u16, len(out)))
            i += 1
            continue
        if not stack:
            raise ParseError(f"Unexpected end tag at byte offset {byte_at(s, begin)}")
        while at(i) not in SPACE and at(i) != ">":
            i += 1
        end_tag = s[begin + 2 : i].lower()
        while i < n and s[i] in SPACE:
            i += 1
        if at(i) != ">":
            raise ParseError(f"Unclosed end tag at byte offset {byte_at(s, begin)}")
        tag, arg, offset, out_at = stack.pop()
        if end_tag and end_tag != tag:
            raise ParseError(
                f"Unmatched end tag at byte offset {byte_at(s, begin)}, expected "
                f'"</{tag}>", found "</{end_tag}>"'
            )
        i += 1
        length = u16 - offset
        if length <= 0:
            continue
        last = entities[-1] if entities else None
        same = last is not None and (last["offset"], last["length"]) == (offset, length)
        if tag in _HTML_SIMPLE:
            entities.append(entity(_HTML_SIMPLE[tag], offset, length))
        elif tag == "tg-emoji":
            if not arg.isdigit() or int(arg) == 0:
                raise ParseError("Invalid custom emoji identifier specified")
            entities.append(entity("custom_emoji", offset, length, arg))
        elif tag == "a":
            url = checked_link(arg or "".join(out[out_at:]))
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
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    text = "".join(out)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(
            "Text contains invalid Unicode characters after decoding HTML "
            "entities, check for unmatched surrogate code units"
        ) from None
    for e in entities:
        e.pop("_lang", None)
    return text, sorted(entities, key=lambda e: (e["offset"], -e["length"]))
