"""Each user in their own language: first contact, /language, messages to others, menus."""

from __future__ import annotations

import datetime as dt
import re

from bot.i18n import translator
from storage import Database, logins
from tests.botapi import BotAPIServer
from tests.helpers import make_invite, make_practitioner, signed_in

VI = translator("vi")
AR = translator("ar")
EN = translator("en")


def unmarked(text: str) -> str:
    """Without the bidi marks and isolates of right-to-left messages (bot/bidi.py)."""
    return re.sub("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", text)


def _differs(text: str) -> str:
    """A translated message: it must exist and not be the English source."""
    assert VI(text) != text, f"not translated to Vietnamese: {text!r}"
    return VI(text)


async def test_a_vietnamese_user_signs_in_and_adds_a_patient_in_vietnamese(
    server: BotAPIServer, bot_db: Database
) -> None:
    link = await make_invite(bot_db, "Lan Nguyen", dt.date(1980, 7, 9))
    lan = server.user(720, "Lan", language_code="vi")
    await lan.open_link(link)
    assert lan.last.text == _differs(
        "Welcome! To keep your records safe, please type your date of birth "
        "(for example {example})."
    ).format(example=VI.date_example())
    await lan.send("9/7/1980")
    assert _differs("Send /help at any time to see everything I can do.") in lan.last.text
    await lan.send("/addpatient")
    assert _differs("What is the patient's full name?") in lan.last.text
    await lan.send("Bao Nguyen")
    assert VI.pgettext("relationship", "Son") in lan.last.labels
    await lan.tap(VI.pgettext("relationship", "Son"))
    await lan.tap(VI.pgettext("access level", "Clinical"))
    await lan.tap(VI.pgettext("access role", "Edit"))
    await lan.tap(_differs("No, create an account for them"))
    await lan.send("1/2/2015")
    assert _differs("Please check:") in lan.last.text
    assert VI.date(dt.date(2015, 2, 1)) in lan.last.text  # Vietnamese date format
    await lan.tap(_differs("✅ Confirm"))
    async with bot_db.read() as conn:
        login = await logins.get(conn, 720)
    assert login is not None and login.locale == "vi"


async def test_a_request_reaches_an_arabic_user_in_arabic(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann", language_code="en")
    omar = server.user(730, "Omar", language_code="ar")
    await signed_in(bot_db, ann, "Ann Lee")
    link = await make_invite(bot_db, "Omar Haddad", dt.date(1975, 3, 1), "omar@example.com")
    await omar.open_link(link)
    await omar.send("1/3/1975")
    await ann.send("/addpatient")
    await ann.send("Omar")
    await ann.tap("Parent")
    await ann.tap("Administrative")
    await ann.tap("View")
    await ann.tap("Yes, they have a login")
    await ann.send("omar@example.com")
    await ann.tap("✅ Confirm")
    await server.wait_idle()
    card = omar.last
    expected = AR("<b>{requester}</b> asks to access your patient portal.").format(
        requester="Ann Lee"
    )
    assert unmarked(expected.replace("<b>", "").replace("</b>", "")) in unmarked(card.text)
    assert expected != EN("<b>{requester}</b> asks to access your patient portal.").format(
        requester="Ann Lee"
    )
    # Marks and isolates aside (tests/test_rtl.py), the words are the catalog's.
    assert unmarked(AR.pgettext("relationship", "Parent")) in unmarked(card.text)
    assert card.labels[0] == AR("✅ Approve")
    await omar.tap(AR("✅ Approve"), message=card)
    await server.wait_idle()
    assert "Omar Haddad approved your request: Administrative, View." in ann.last.text  # English


async def test_language_can_be_changed_mid_use(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann", language_code="en")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/language")
    assert ann.last.labels == ["● English", "简体中文", "Tiếng Việt", "العربية"]
    await ann.tap("Tiếng Việt")
    assert "Tiếng Việt" in ann.last.text
    await ann.send("/help")
    assert ann.last.text.startswith(
        VI("<b>What I can do</b>").replace("<b>", "").replace("</b>", "")
    )
    await ann.send("/language")
    await ann.tap("English")
    await ann.send("/help")
    assert ann.last.text.startswith("What I can do")
    await ann.tap_data("lang:xx", message=ann.last)
    assert ann.alerts[-1][1] is True


async def test_command_menus_in_every_language(server: BotAPIServer, bot_db: Database) -> None:
    await server.wait_idle()  # the menus go out just after start-up
    menus = server.commands
    assert set(menus) >= {("default", ""), ("default", "zh"), ("default", "vi"), ("default", "ar")}
    english = [c["command"] for c in menus[("default", "")]]
    assert english[:2] == ["start", "switch"] and "invite" not in english and "language" in english
    assert menus[("default", "vi")][0]["description"] == VI("Home menu") != "Home menu"
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/start")
    scoped = [k for k in menus if k[0] != "default"]
    assert len(scoped) == 1 and "invite" in [c["command"] for c in menus[scoped[0]]]
    assert not server.errors, server.errors


def test_money_and_dates_per_locale() -> None:
    day = dt.date(2026, 3, 4)
    assert EN.date(day) == "4 Mar 2026"
    assert VI.money(123456, "AUD") != EN.money(123456, "AUD")
    assert "١" in AR.number(1) or AR.number(1) == "1"
    assert translator("zh_Hans").date(day) == "2026年3月4日"
