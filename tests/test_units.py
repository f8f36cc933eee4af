"""Small pure pieces: dates people type, names, emails, tokens, translations."""

from __future__ import annotations

import datetime as dt

import pytest
from babel import Locale
from hypothesis import given
from hypothesis import strategies as st

from bot.dates import parse_date
from bot.i18n import match_language, translator
from bot.text import clean_email, clean_name
from bot.tokens import hash_token, is_start_payload, new_token

AU = Locale.parse("en_AU")
US = Locale.parse("en_US")


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("4/3/2010", AU, dt.date(2010, 3, 4)),
        ("04/03/2010", AU, dt.date(2010, 3, 4)),
        ("4.3.2010", AU, dt.date(2010, 3, 4)),
        ("2010-03-04", AU, dt.date(2010, 3, 4)),
        ("4 March 2010", AU, dt.date(2010, 3, 4)),
        ("4 mar 2010", AU, dt.date(2010, 3, 4)),
        ("March 4, 2010", AU, dt.date(2010, 3, 4)),
        ("4/3/2010", US, dt.date(2010, 4, 3)),
        ("  2010-03-04 ", AU, dt.date(2010, 3, 4)),
        ("٤/٣/٢٠١٠", Locale.parse("ar"), dt.date(2010, 3, 4)),
        ("4\u200f/3\u200f/2010", Locale.parse("ar"), dt.date(2010, 3, 4)),
    ],
)
def test_dates_in_the_forms_people_type(text: str, locale: Locale, expected: dt.date) -> None:
    assert parse_date(text, locale) == expected


@pytest.mark.parametrize("text", ["31/2/2010", "4/3/10", "yesterday", "", "2010-13-01", "1/1/1/1"])
def test_dates_that_are_not_dates(text: str) -> None:
    assert parse_date(text, AU) is None


@given(st.text(max_size=200))
def test_date_parser_never_raises(text: str) -> None:
    parse_date(text, AU)


def test_names_are_trimmed_and_bounded() -> None:
    assert clean_name("  Mia   Lee ") == "Mia Lee"
    assert clean_name("李小明") == "李小明"
    assert clean_name("") is None
    assert clean_name("   ") is None
    assert clean_name("x" * 101) is None
    assert clean_name("x" * 100) == "x" * 100
    assert clean_name("Mia\x07Lee") is None


# Names that every font draws as nothing (issue #17, item 11).
INVISIBLE_NAMES = [
    "\u200b",  # zero-width space
    "\u200d\u200d",  # zero-width joiners
    "\u2800",  # braille blank
    "\u3164",  # Hangul filler: a letter (Lo) that is drawn as nothing
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\uffa0",  # halfwidth Hangul filler
    "\u202e",  # a lone right-to-left override
    " \u200b \u2800\u3164 ",
    "\u0301",  # a combining accent with nothing to sit on
]


@pytest.mark.parametrize("text", INVISIBLE_NAMES)
def test_a_name_needs_a_visible_letter(text: str) -> None:
    assert clean_name(text) is None


def test_names_are_nfc_and_keep_the_joiners_scripts_need() -> None:
    assert clean_name("  Jose\u0301 \t Ng ") == "Jos\u00e9 Ng"
    assert clean_name("Ann\u202e Lee\u200b") == "Ann Lee"  # no override left to flip a card
    assert clean_name("\u0645\u0647\u200c\u0633\u0627") == "\u0645\u0647\u200c\u0633\u0627"
    assert clean_name("\u3164Kim\u2800 \uffa0Lee") == "Kim Lee"  # fillers pad like spaces


def test_emails() -> None:
    assert clean_email(" ann@example.com ") == "ann@example.com"
    assert clean_email("ann@example") is None
    assert clean_email("not an email") is None
    assert clean_email("<b>@x.com") is None


def test_tokens_are_long_random_and_fit_a_start_payload() -> None:
    tokens = {new_token()[0] for _ in range(200)}
    assert len(tokens) == 200
    token, digest = new_token()
    assert is_start_payload(token)
    assert len(token) >= 22  # 128 bits in base64url
    assert digest == hash_token(token) and token not in digest
    assert not is_start_payload("x" * 65)
    assert not is_start_payload("abc def")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "en"),
        ("en-AU", "en"),
        ("zh-hans", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("vi", "vi"),
        ("ar", "ar"),
        ("de", "en"),
        (None, "en"),
    ],
)
def test_languages_from_telegram_codes(code: str | None, expected: str) -> None:
    assert match_language(code) == expected


def test_money_and_dates_follow_the_locale() -> None:
    en = translator("en", "en_AU")
    assert en.money(12345, "AUD") == "$123.45"
    assert en.date(dt.date(2010, 3, 4)) == "4 Mar 2010"  # the month in words: no d/m doubt
    assert en.date_example() == "4/3/2010"  # four-digit year: the parser refuses two
    vi = translator("vi", "en_AU")
    assert "123,45" in vi.money(12345, "AUD")
