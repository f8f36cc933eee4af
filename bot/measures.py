"""An observation's values as people read them: "120/80 mmHg", "5.4 mmol/L", "37.2 °C".

The importer decides what to show (`measurement`): each number rounded to the precision its
kind of measurement is read at, never finer than the source wrote it, and each UCUM unit
code ("mm[Hg]", "Cel", "kg/m2", "{score}") as it is written for people. It stores that as
JSON; the views format the numbers in the reader's locale (`render`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale

from bot.i18n import decimal_as_written

UCUM = "http://unitsofmeasure.org"
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"  # LOINC

# Units people write differently from their UCUM code.
_UNIT_TEXT = {
    "Cel": "°C",
    "[degF]": "°F",
    "mm[Hg]": "mmHg",
    "cm[H2O]": "cmH₂O",
    "[in_i]": "in",
    "[ft_i]": "ft",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "[IU]": "IU",
    "[iU]": "IU",
    "[pH]": "",
    "1": "",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
}
# Decimals each unit is usually read at (vital signs, mostly); other units: see `places`.
_USUAL_PLACES = {
    "Cel": 1,
    "[degF]": 1,
    "mm[Hg]": 0,
    "/min": 0,
    "{beats}/min": 0,
    "{breaths}/min": 0,
    "kg": 1,
    "g": 0,
    "[lb_av]": 1,
    "cm": 1,
    "[in_i]": 1,
    "kg/m2": 1,
    "%": 1,
    "{score}": 0,
    "[pH]": 2,
    "g/mL": 3,  # urine specific gravity, 1.015
    "{SG}": 3,
}
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_MICRO = re.compile(r"(?<![A-Za-z])u(?=(?:g|L|l|mol|U|IU|\[IU\]|m|s|eq|kat)\b)")


def unit_text(code: str | None, unit: str | None, system: str | None) -> str:
    """The unit to show: a UCUM code made readable, else the source's own words."""
    if code and (system == UCUM or not unit):
        return _ucum_text(code)
    return _ucum_text(unit) if unit else ""


@functools.cache  # a bundle has thousands of values in a handful of units
def _ucum_text(code: str) -> str:
    if code in _UNIT_TEXT:
        return _UNIT_TEXT[code]
    text = re.sub(r"\{[^}]*\}", "", code)  # annotations: "{score}", "{beats}/min"
    text = re.sub(r"10\*(-?\d+)", lambda m: "×10" + m[1].translate(_SUPERSCRIPT), text)
    text = re.sub(r"(?<=[A-Za-z])([23])\b", lambda m: m[1].translate(_SUPERSCRIPT), text)
    text = _MICRO.sub("µ", text)
    text = re.sub(r"\[([A-Za-z]+)(?:_[a-z]+)?\]", r"\1", text)  # "[IU]", "[in_i]"
    return "" if text in ("1", "/") else text


def places(value: Decimal, code: str | None) -> int:
    """Decimals to show: the unit's usual ones where known, else three significant digits
    (two below 1) but at most two decimals unless the value is that small; never more
    than the source wrote."""
    exponent = value.as_tuple().exponent
    written = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    usual = _USUAL_PLACES.get(code or "")
    if usual is None:
        size = abs(value)
        if size >= 1:
            whole_digits = len(str(int(size)))
            usual = min(2, max(0, 3 - whole_digits))
        elif size == 0:
            usual = 0
        else:
            # 0.95, 0.012: the first two significant digits
            usual = -size.adjusted() + 1
    return min(usual, written)


def rounded(value: Decimal, code: str | None) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places(value, code)), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Part:
    label: str | None  # a component's name; None for the observation's own value
    comparator: str  # "<", "<=", ">=", ">" or ""
    value: Decimal  # already rounded: its exponent is the decimals to show
    unit: str  # as people read it; "" for none


def measurement_json(parts: Sequence[Part], codes: Sequence[str | None]) -> str | None:
    """What the importer stores. Systolic and diastolic in one unit read as one value."""
    if not parts:
        return None
    joined = False
    by_code = dict(zip(codes, parts, strict=True))
    if SYSTOLIC in by_code and DIASTOLIC in by_code and len(parts) == 2:
        parts = [by_code[SYSTOLIC], by_code[DIASTOLIC]]
        joined = parts[0].unit == parts[1].unit
    return json.dumps(
        {
            "joined": joined,
            "parts": [[p.label, p.comparator, str(p.value), p.unit] for p in parts],
        },
        ensure_ascii=False,
    )


def render(stored: str | None, locale: Locale) -> str:
    """The stored measurement in the reader's locale: "120/80 mmHg", "5,4 mmol/L"."""
    if not stored:
        return ""
    data = json.loads(stored)
    parts = [Part(label, cmp, Decimal(value), unit) for label, cmp, value, unit in data["parts"]]
    if data.get("joined"):
        numbers_ = "/".join(p.comparator + number(p.value, locale) for p in parts)
        return f"{numbers_} {parts[0].unit}".strip()
    shown = []
    for p in parts:
        text = f"{p.comparator}{number(p.value, locale)} {p.unit}".strip()
        shown.append(f"{p.label}: {text}" if p.label else text)
    return ", ".join(shown)


def number(value: Decimal, locale: Locale) -> str:
    """A decimal in the locale's digits and separators, with exactly its own decimals."""
    return decimal_as_written(value, locale)
