"""Checks and escaping for what people type."""

from __future__ import annotations

import html
import re
import unicodedata

NAME_MAX = 100
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]{2,}$")


# Letters (Lo) or a symbol that every font draws as nothing: the Hangul fillers and the
# braille blank. In a name they can only be padding, so they count as spaces.
_BLANKS = str.maketrans(dict.fromkeys("\u115f\u1160\u3164\uffa0\u2800", " "))
# Format characters (Cf) a name may need: the zero-width non-joiner and joiner shape
# Persian, Indic and other scripts. Every other one (zero-width space, direction
# overrides, ...) is invisible, and an unpaired override reverses the text after the name.
_KEPT_FORMAT = frozenset("\u200c\u200d")


def clean_name(text: str | None) -> str | None:
    """A person's name as it will show on cards, or None when it cannot be used: NFC,
    trimmed, inner spaces collapsed, 1–100 characters, no control characters, at least
    one letter. Used wherever a name is typed or imported."""
    if text is None:
        return None
    normal = unicodedata.normalize("NFC", text).translate(_BLANKS)
    kept = "".join(ch for ch in normal if unicodedata.category(ch) != "Cf" or ch in _KEPT_FORMAT)
    name = " ".join(kept.split())
    if not 1 <= len(name) <= NAME_MAX:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in name):
        return None
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        return None
    return name


def clean_email(text: str | None) -> str | None:
    if text is None:
        return None
    email = text.strip()
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in email):
        return None  # invisible: an address that looks like another
    return email


# Marks, embeddings, overrides and isolates: in data they can only reorder the words around
# them, and the bot's own marks tell a right-to-left message (bot/bidi.py).
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def esc(text: object) -> str:
    """Anything from a user or the database, made safe inside an HTML message (and
    without bidi controls)."""
    value = str(text)
    if not value.isascii():  # bidi controls are never ASCII: most names skip the scan
        value = value.translate(_BIDI_CONTROLS)
    return html.escape(value, quote=False)


TELEGRAM_TEXT_LIMIT = 4096


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line breaks where possible.

    Lines are kept whole so an HTML tag opened on a line closes in the same piece; our
    messages never span a tag across lines. Length is counted on the HTML source, which
    is never shorter than what Telegram counts after parsing it.
    """
    if len(text) <= limit:  # nearly every message: the loop below would give it back whole
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # one enormous line: cut it hard
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    pieces.append(current)
    return [p for p in pieces if p.strip()] or [text[:limit]]
