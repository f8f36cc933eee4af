"""Per-call translation and locale-aware formatting (babel + gettext).

Catalogs are read from `locales/<lang>/LC_MESSAGES/messages.po` and compiled on first use
(kept beside it as `messages.<hash of the .po>.mo`), so a fresh clone needs no compile step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gettext
import hashlib
import io
import os
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from bot import bidi

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

# Catalog code -> name shown in the language picker (in that language).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "zh_Hans": "简体中文",
    "vi": "Tiếng Việt",
    "ar": "العربية",
}
SOURCE_LANGUAGE = "en"

# Formatting locale per catalog: the practice is in Australia.
_FORMAT_LOCALE = {"en": "en_AU", "zh_Hans": "zh_Hans_CN", "vi": "vi_VN", "ar": "ar"}


def match_language(code: str | None, default: str = SOURCE_LANGUAGE) -> str:
    """Map Telegram's language_code (an IETF tag such as 'zh-hans' or 'en-AU') to a catalog."""
    for candidate in (code, default):
        if not candidate:
            continue
        tag = candidate.replace("-", "_").lower()
        if tag in ("zh", "zh_hans", "zh_cn", "zh_sg") or tag.startswith("zh_hans"):
            return "zh_Hans"
        primary = tag.split("_")[0]
        if primary in ("en", "vi", "ar"):
            return primary
    return SOURCE_LANGUAGE


@functools.cache
def _catalog(language: str) -> gettext.NullTranslations:
    po = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return gettext.NullTranslations()
    source = po.read_bytes()
    # Named by the .po's content, not compared by mtime: a .po deployed with its times kept
    # (rsync -a, tar) may be older than a .mo compiled from the version before it.
    mo = po.with_name(f"{DOMAIN}.{hashlib.sha256(source).hexdigest()[:16]}.mo")
    try:
        with mo.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    except OSError:  # not compiled yet, or damaged: compile it below
        pass
    buf = io.BytesIO()
    write_mo(buf, read_po(io.BytesIO(source), locale=language))
    _keep_compiled(mo, buf.getvalue())
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def _keep_compiled(mo: Path, data: bytes) -> None:
    """Parsing a .po is slow and every start needs all of them for the command menus; a .mo
    loads in a fraction of the time (benchmarks/README.md). Older versions go; a read-only
    install just compiles each time."""
    partial = mo.with_name(f".{mo.name}.{os.getpid()}.mo")  # ignored by git like any .mo
    try:
        partial.write_bytes(data)
        os.replace(partial, mo)  # never a half-written .mo, even with two processes
        for old in mo.parent.glob(f"{DOMAIN}.*.mo"):
            if old != mo:
                old.unlink(missing_ok=True)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class Translator:
    """Everything locale-dependent for one recipient: `_ = translator(lang)`, then `_("…")`."""

    language: str
    format_locale: Locale

    @property
    def _t(self) -> gettext.NullTranslations:
        return _catalog(self.language)

    def __call__(self, message: str) -> str:
        return _gettext(self.language, self.rtl, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _direct(self._t.ngettext(singular, plural, n), self.rtl)

    def pgettext(self, context: str, message: str) -> str:
        return _pgettext(self.language, self.rtl, context, message)

    @functools.cached_property
    def rtl(self) -> bool:
        # Asked for every text: babel works it out from the locale's data each time.
        return self.format_locale.text_direction == "rtl"

    # Dates, one style per kind (the same in every message of a locale):
    # date / day_of — a calendar date: "5 Sept 2016", "2016年9月5日", "5 سبتمبر 2016"
    # when — a moment: weekday, date and time ("Mon 5 Sept 2016 · 10:30 am")
    # short_day — a day on a button ("5 Sept")
    # typed_date — the digits people type it as ("5/9/2016"), only to show how to type one

    def date(self, value: dt.date) -> str:
        """A calendar date (a date of birth, an invoice's, until when a link works): the
        month in words, so day and month cannot be swapped."""
        return _day("yMMMd", value, self.format_locale)

    def day_of(self, timestamp: int, tz: dt.tzinfo) -> str:
        """The calendar date of a moment, in the practice's time zone, as date() writes it."""
        return self.date(dt.datetime.fromtimestamp(timestamp, tz).date())

    def when(self, timestamp: int, tz: dt.tzinfo) -> str:
        """A moment (an appointment, an event in the log): weekday, date and short time."""
        moment = dt.datetime.fromtimestamp(timestamp, tz)
        day = _day("yMMMEd", moment.date(), self.format_locale)
        time = _short_time(moment.hour, moment.minute, self.format_locale)
        return f"{day} · {time}"

    def short_day(self, timestamp: int, tz: dt.tzinfo) -> str:
        """'3 Dec' — short enough for a button."""
        moment = dt.datetime.fromtimestamp(timestamp, tz)
        return _day("MMMd", moment.date(), self.format_locale)

    def typed_date(self, value: dt.date) -> str:
        """A date as people type it here: the locale's short numeric form with a four-digit
        year (the parser refuses two-digit years for dates of birth)."""
        pattern = dates.get_date_format("short", locale=self.format_locale).pattern
        return dates.format_date(
            value, format=re.sub("y+", "y", pattern), locale=self.format_locale
        )

    def date_example(self) -> str:
        """A date written the way people type it here, for prompts."""
        return self.typed_date(dt.date(2010, 3, 4))

    def money(self, minor_units: int, currency: str) -> str:
        """An amount in the locale's currency format, spaced as CLDR spaces it (babel does
        not): a symbol made of letters stands apart from the digits, 'EUR 48.00' rather
        than 'EUR48.00'; '$48.00' and '48,00 €' stay as they are."""
        digits = numbers.get_currency_precision(currency)
        amount = Decimal(minor_units).scaleb(-digits)
        text = numbers.format_currency(amount, currency, locale=self.format_locale)
        symbol = numbers.get_currency_symbol(currency, locale=self.format_locale)
        at = text.find(symbol)
        end = at + len(symbol)
        if at < 0 or not symbol:
            return text
        if end < len(text) and text[end].isdigit() and _apart(symbol[-1]):
            return text[:end] + "\u00a0" + text[end:]
        if at > 0 and text[at - 1].isdigit() and _apart(symbol[0]):
            return text[:at] + "\u00a0" + text[at:]
        return text

    def number(self, value: int | float) -> str:
        return numbers.format_decimal(value, locale=self.format_locale)


# A page of appointments writes the same few days and times over and over, and babel
# looks the locale's patterns and names up afresh for each (benchmarks/README.md). The
# skeletons above have date fields only, and a short time is hours and minutes, so the
# text depends on nothing else.
@functools.lru_cache(maxsize=8192)
def _day(skeleton: str, day: dt.date, locale: Locale) -> str:
    return dates.format_skeleton(skeleton, day, locale=locale)


@functools.lru_cache(maxsize=4096)
def _short_time(hour: int, minute: int, locale: Locale) -> str:
    return dates.format_time(dt.time(hour, minute), format="short", locale=locale)


def _apart(edge: str) -> bool:
    """CLDR's currencySpacing: a symbol whose edge is not itself a symbol or a space (a
    letter, as in 'EUR') is kept apart from a digit next to it."""
    return not unicodedata.category(edge).startswith(("S", "Z"))


def decimal_as_written(value: Decimal, locale: Locale) -> str:
    """A measured value in the locale's digits and separators, with exactly the decimals it
    has (bot/measures.py has already rounded it as the measurement is usually read)."""
    exponent = value.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return numbers.format_decimal(value, format=pattern, locale=locale)


# A message's words, directed, once per language: a screen asks for a dozen or more, on
# every update (issue #23). Bounded: a message is a literal of the code, but a caller
# could pass text of its own.
@functools.lru_cache(maxsize=4096)
def _gettext(language: str, rtl: bool, message: str) -> str:
    return _direct(_catalog(language).gettext(message), rtl)


@functools.lru_cache(maxsize=4096)
def _pgettext(language: str, rtl: bool, context: str, message: str) -> str:
    return _direct(_catalog(language).pgettext(context, message), rtl)


def _direct(text: str, rtl: bool) -> str:
    """Right-to-left messages mark their direction and isolate what is put into them
    (bot/bidi.py); the bot's final pass relies on those marks."""
    return bidi.rtl_template(text) if rtl else text


# One per language asked for (Telegram's codes, a few dozen at most): every update asks
# for its caller's, and a Translator is immutable, its text direction worked out once.
@functools.lru_cache(maxsize=256)
def translator(language: str | None, default_locale: str = "en_AU") -> Translator:
    lang = match_language(language, default_locale)
    fmt = _FORMAT_LOCALE[lang]
    if lang == "en" and default_locale.lower().startswith("en"):
        fmt = default_locale
    return Translator(language=lang, format_locale=Locale.parse(fmt))


def N_(message: str) -> str:
    return message
