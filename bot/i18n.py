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
    """Parsing a .po takes ~15 ms and every start needs all of them for the command menus;
    a .mo loads in ~1.5 ms. Older versions go; a read-only install just compiles each time."""
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
        return self._directed(self._t.gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._directed(self._t.ngettext(singular, plural, n))

    def pgettext(self, context: str, message: str) -> str:
        return self._directed(self._t.pgettext(context, message))

    @property
    def rtl(self) -> bool:
        return self.format_locale.text_direction == "rtl"

    def _directed(self, text: str) -> str:
        """Right-to-left messages mark their direction and isolate what is put into them
        (bot/bidi.py); the bot's final pass relies on those marks."""
        return bidi.rtl_template(text) if self.rtl else text

    def date(self, value: dt.date, format: str = "medium") -> str:
        return dates.format_date(value, format=format, locale=self.format_locale)

    def datetime(self, value: dt.datetime, tz: dt.tzinfo, format: str = "medium") -> str:
        return dates.format_datetime(value, format=format, tzinfo=tz, locale=self.format_locale)

    def when(self, timestamp: int, tz: dt.tzinfo) -> str:
        """An appointment time as people read it: weekday, date and short time."""
        moment = dt.datetime.fromtimestamp(timestamp, tz)
        day = dates.format_skeleton("yMMMEd", moment, locale=self.format_locale)
        time = dates.format_time(moment, format="short", locale=self.format_locale)
        return f"{day} · {time}"

    def short_day(self, timestamp: int, tz: dt.tzinfo) -> str:
        """'3 Dec' — short enough for a button."""
        moment = dt.datetime.fromtimestamp(timestamp, tz)
        return dates.format_skeleton("MMMd", moment, locale=self.format_locale)

    def money(self, minor_units: int, currency: str) -> str:
        digits = numbers.get_currency_precision(currency)
        amount = Decimal(minor_units).scaleb(-digits)
        return numbers.format_currency(amount, currency, locale=self.format_locale)

    def number(self, value: int | float) -> str:
        return numbers.format_decimal(value, locale=self.format_locale)

    def date_example(self) -> str:
        """A date written the way this locale writes it, with a four-digit year (the parser
        refuses two-digit years for dates of birth), for prompts."""
        pattern = dates.get_date_format("short", locale=self.format_locale).pattern
        return self.date(dt.date(2010, 3, 4), format=re.sub("y+", "y", pattern))


@functools.cache
def translator(language: str | None, default_locale: str = "en_AU") -> Translator:
    lang = match_language(language, default_locale)
    fmt = _FORMAT_LOCALE[lang]
    if lang == "en" and default_locale.lower().startswith("en"):
        fmt = default_locale
    return Translator(language=lang, format_locale=Locale.parse(fmt))


def N_(message: str) -> str:
    return message
