"""Right-to-left messages that Telegram lays out right to left, line by line.

Telegram takes each line's direction from its first strong letter, so an Arabic line that
starts with a Latin name ("• Sam Rivera (شريك الحياة)") or a command ("/start — …") is laid
out left to right, and a Latin name followed by a date swallows the date into its own
run. Two steps put that right, both only for right-to-left languages:

* `rtl_template`, applied by the Translator to every catalog message: each line begins
  with a right-to-left mark (U+200F), and each {placeholder} is wrapped in a first-strong
  isolate (FSI U+2068 … PDI U+2069), so the name or value put there keeps its own
  direction and cannot pull the words around it.
* `right_to_left`, applied to every text the bot sends (bot/portalbot.py) that carries
  such marks: lines built in code ("• " + a name) also begin with a mark where needed,
  and left-to-right stretches not yet isolated (names, emails, commands) are isolated.
  Data never brings marks of its own (bot.text.esc drops them), so a message with a
  right-to-left mark was written for a right-to-left reader.

HTML tags and character references are never cut, URLs are left as they are, and nothing
is inserted inside <code> or <pre> (what is copied from there must stay exact).
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import unicodedata

RLM = "\u200f"
FSI = "\u2068"
PDI = "\u2069"
_OPENS = frozenset("\u2066\u2067\u2068")  # LRI, RLI, FSI
_MARKS = frozenset("\u200e\u200f\u061c")  # LRM, RLM, ALM: strong, but no part of a word
_STRONG_RTL = frozenset({"R", "AL"})
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_TAG = re.compile(r"<[^>]*>")
_UNIT = re.compile(r"<[^>]*>|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z]+);?|.", re.DOTALL)
_URL = re.compile(r"(?i)^[(\[]?(?:https?://|tg://|www\.)")
_TRAILING_PUNCTUATION = ".,:;!?"


@functools.lru_cache(maxsize=4096)
def rtl_template(message: str) -> str:
    """A catalog message of a right-to-left language, ready to be formatted."""
    parts = _TAG.split(message)
    tags = _TAG.findall(message)
    isolated = [_PLACEHOLDER.sub(lambda m: FSI + m.group() + PDI, part) for part in parts]
    text = "".join(p + (tags[i] if i < len(tags) else "") for i, p in enumerate(isolated))
    return "\n".join(
        RLM + line if line.strip() and not line.startswith(RLM) else line
        for line in text.split("\n")
    )


def reads_right_to_left(text: str) -> bool:
    """Written with a right-to-left Translator (its messages carry RLM marks)."""
    return RLM in text


def right_to_left(text: str, *, html: bool) -> str:
    """Every line of a right-to-left message laid out right to left (see the module)."""
    return "\n".join(_line(line, html) for line in text.split("\n"))


class _Unit:
    """One character, HTML tag, character reference or <code>/<pre> element of a line."""

    __slots__ = ("kind", "source", "strong")

    def __init__(self, source: str, kind: str, strong: str | None) -> None:
        self.source = source
        # "char", "space", "tag", "mark", "open" (an isolate), "close", "opaque"
        self.kind = kind
        self.strong = strong  # "L", "R" or None


def _strong(text: str) -> str | None:
    kinds = {unicodedata.bidirectional(ch) for ch in text}
    if kinds & _STRONG_RTL:
        return "R"
    return "L" if "L" in kinds else None


def _units(line: str, html: bool) -> list[_Unit]:
    units: list[_Unit] = []
    pieces = _UNIT.findall(line) if html else list(line)
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        if html and piece.startswith("<") and len(piece) > 1:
            name = piece[1:].split(None, 1)[0].rstrip(">").lower() if piece[1:] else ""
            if name in ("code", "pre"):  # the whole element, untouched
                end = next(
                    (j for j in range(i + 1, len(pieces)) if pieces[j].lower() == f"</{name}>"),
                    len(pieces) - 1,
                )
                source = "".join(pieces[i : end + 1])
                inner = html_lib.unescape(_TAG.sub("", source))
                units.append(_Unit(source, "opaque", _strong(inner)))
                i = end + 1
                continue
            units.append(_Unit(piece, "tag", None))
        elif piece in _OPENS:
            units.append(_Unit(piece, "open", None))
        elif piece == PDI:
            units.append(_Unit(piece, "close", None))
        elif piece in _MARKS:
            units.append(_Unit(piece, "mark", _strong(piece)))
        else:
            char = html_lib.unescape(piece) if html and piece.startswith("&") else piece
            kind = "space" if char.isspace() else "char"
            units.append(_Unit(piece, kind, _strong(char)))
        i += 1
    return units


def _line(line: str, html: bool) -> str:
    if not line.strip():
        return line
    units = _units(line, html)
    out: list[str] = []
    run: list[_Unit] = []  # units between tags and isolates, not yet written
    depth = 0
    for unit in units:
        if depth == 0 and unit.kind in ("char", "space", "opaque"):
            run.append(unit)
            continue
        out.append(_isolate_stretches(run))
        run = []
        out.append(unit.source)
        if unit.kind == "open":
            depth += 1
        elif unit.kind == "close":
            depth = max(0, depth - 1)
    out.append(_isolate_stretches(run))
    result = "".join(out)
    # Right to left whether or not the app skips isolates when it looks for the first
    # strong letter (the Unicode algorithm does; not every text engine does).
    laid_out = _units(result, html)
    if _first_strong(laid_out, skip_isolates=True) != "R" or _first_strong(laid_out) != "R":
        result = RLM + result
    return result


def _first_strong(units: list[_Unit], *, skip_isolates: bool = False) -> str | None:
    depth = 0
    for unit in units:
        if unit.kind == "open":
            depth += 1
        elif unit.kind == "close":
            depth = max(0, depth - 1)
        elif (depth == 0 or not skip_isolates) and unit.strong is not None:
            return unit.strong
    return None


def _isolate_stretches(run: list[_Unit]) -> str:
    """Left-to-right stretches of a run of text wrapped in isolates: consecutive words
    with no right-to-left letter and no URL, from the first word with a Latin (or other
    left-to-right) letter to the last one, trailing punctuation left outside."""
    words: list[list[_Unit]] = []  # words and the spaces between them, alternating
    for unit in run:
        space = unit.kind == "space"
        if not words or (words[-1][0].kind == "space") != space:
            words.append([unit])
        else:
            words[-1].append(unit)
    out: list[str] = []
    pending: list[list[_Unit]] = []  # a candidate stretch: words without RTL letters

    def flush() -> None:
        lefts = [
            k for k, w in enumerate(pending) if w[0].kind != "space" and _word_strong(w) == "L"
        ]
        if not lefts:
            out.extend(u.source for w in pending for u in w)
            return
        first, last = lefts[0], lefts[-1]
        tail = pending[last]
        cut = len(tail)
        while cut > 1 and tail[cut - 1].source in _TRAILING_PUNCTUATION:
            cut -= 1
        if _word_strong(tail[:cut]) != "L":
            cut = len(tail)
        out.extend(u.source for w in pending[:first] for u in w)
        out.append(FSI)
        out.extend(u.source for w in pending[first:last] for u in w)
        out.extend(u.source for u in tail[:cut])
        out.append(PDI)
        out.extend(u.source for u in tail[cut:])
        out.extend(u.source for w in pending[last + 1 :] for u in w)

    for word in words:
        if word[0].kind != "space" and (_word_strong(word) == "R" or _is_url(word)):
            flush()
            pending = []
            out.extend(u.source for u in word)
        else:
            pending.append(word)
    flush()
    return "".join(out)


def _word_strong(word: list[_Unit]) -> str | None:
    strong = {u.strong for u in word}
    if "R" in strong:
        return "R"
    return "L" if "L" in strong else None


def _is_url(word: list[_Unit]) -> bool:
    return bool(_URL.match("".join(u.source for u in word)))
