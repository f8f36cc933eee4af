"""Reading dates that people type, in the way their locale writes them."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from babel import Locale, dates

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_NUMERIC = re.compile(r"^(\d{1,4})[./\- ](\d{1,2})[./\- ](\d{1,4})$")
_WORDS = re.compile(
    r"^(\d{1,2})\s*([^\d\s,.]+)\.?,?\s*(\d{4})$|^([^\d\s,.]+)\.?\s*(\d{1,2}),?\s*(\d{4})$"
)


def _field_order(locale: Locale) -> str:
    """'dmy', 'mdy' or 'ymd' from the locale's short date pattern."""
    pattern = dates.get_date_format("short", locale=locale).pattern
    order = [c for c in pattern if c in "dMy"]
    seen: list[str] = []
    for c in order:
        if c not in seen:
            seen.append(c)
    return "".join(seen).lower() if len(seen) == 3 else "dmy"


def _month_lookup(locale: Locale) -> dict[str, int]:
    names: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            for number, name in dates.get_month_names(width, context, locale=locale).items():
                names[name.lower().rstrip(".")] = number
    for number, name in dates.get_month_names("wide", locale=Locale("en")).items():
        names.setdefault(name.lower(), number)
        names.setdefault(name.lower()[:3], number)
    return names


def parse_date(text: str, locale: Locale) -> dt.date | None:
    """A date from `2010-03-04`, `4/3/2010` (in the locale's order) or `4 March 2010`; else None.

    Two-digit years are refused: for a date of birth, '10' could be 1910 or 2010.
    """
    text = " ".join(_normalise(text).split())
    if len(text) > 40:
        return None
    try:
        if m := _ISO.match(text):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _NUMERIC.match(text):
            a, b, c = m[1], m[2], m[3]
            if len(a) == 4:
                return dt.date(int(a), int(b), int(c))
            if len(c) != 4:
                return None
            order = _field_order(locale)
            if order.startswith("m"):
                return dt.date(int(c), int(a), int(b))
            return dt.date(int(c), int(b), int(a))
        if m := _WORDS.match(text):
            day, month, year = (m[1], m[2], m[3]) if m[1] else (m[5], m[4], m[6])
            number = _month_lookup(locale).get(month.lower())
            if number is None:
                return None
            return dt.date(int(year), number, int(day))
    except ValueError:
        return None
    return None


def _normalise(text: str) -> str:
    """Arabic-Indic and other decimal digits to ASCII; bidi marks (which Arabic dates carry
    when copied) removed."""
    out = []
    for ch in text:
        if ch in "\u200e\u200f\u061c\u202a\u202b\u202c":
            continue
        out.append(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch)
    return "".join(out)


def plausible_birth_date(value: dt.date, today: dt.date) -> bool:
    return dt.date(1900, 1, 1) <= value <= today
