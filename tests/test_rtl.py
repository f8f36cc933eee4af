"""Right-to-left, end to end: every line the bot sends an Arabic reader is laid out right to
left by Telegram (whose first strong letter, outside isolates, is right-to-left), with
names, emails and commands isolated, and HTML that still parses."""

from __future__ import annotations

import re
import unicodedata

from bot import bidi
from bot.i18n import translator
from bot.text import clean_email, esc
from playground import demo
from storage import Database
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import BOT

AR = translator("ar")
OPEN, CLOSE = "\u2066\u2067\u2068", "\u2069"


def _outside_isolates(line: str) -> str:
    depth, kept = 0, []
    for ch in line:
        if ch in OPEN:
            depth += 1
        elif ch == CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(ch)
    return "".join(kept)


def _first_strong(text: str) -> str | None:
    return next(
        (k for ch in text if (k := unicodedata.bidirectional(ch)) in ("L", "R", "AL")), None
    )


def _misread(text: str) -> list[str]:
    """Lines Telegram would lay out left to right (whether its text engine skips isolates
    when it looks for the first strong letter, as Unicode says, or not), or with Latin
    text loose in them."""
    wrong = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        outside = _outside_isolates(line)
        loose = re.sub(r"https?://\S+", "", outside)
        firsts = {_first_strong(outside), _first_strong(line)}
        if not firsts <= {"R", "AL"} or re.search(r"[A-Za-z]", loose):
            wrong.append(line)
    return wrong


def _everything_said(user: SimUser) -> list[str]:
    said = [m.content for m in user.bot_messages if m.content]
    return said + [text for text, _ in user.alerts if text]


async def test_every_line_an_arabic_reader_gets_reads_right_to_left(
    server: BotAPIServer, bot_db: Database
) -> None:
    seeded = await demo.seed_demo(
        bot_db, bot_username=BOT, ttl_days=14, practitioner_telegram_id=500
    )
    sam = server.user(800, "Sam", language_code="ar")
    await sam.open_link(seeded.links["parent"])
    await sam.send("12/4/1986")
    card = await sam.wait_for("Alex Chen", after=0)  # the demo's waiting request
    await sam.send("/help")
    await sam.send("/start")
    await sam.send("/access")
    await sam.send("/switch")
    await sam.tap("Lily Rivera")
    for view in ("🧾 Invoices", "📋 Records", "👤 Details", "📅 Appointments"):
        await sam.tap(AR(view))
    await sam.send("/activity")
    await sam.send("/addpatient")
    await sam.send("Jo Park")
    await sam.tap(AR.pgettext("relationship", "Child"))
    await sam.tap(AR.pgettext("access level", "Clinical"))
    await sam.tap(AR.pgettext("access role", "Edit"))
    await sam.tap(AR("No, create an account for them"))
    await sam.send("1/2/2018")
    await sam.tap(AR("✅ Confirm"))
    await sam.tap(AR("✅ Approve"), message=card)
    await sam.send("/access")

    doctor = server.user(500, "Maya", language_code="ar")
    await doctor.send("/invite")
    await doctor.send("Jo Park")
    await doctor.send("3/2/1985")
    await doctor.tap(AR("Skip"), expect=2)
    await server.wait_idle()

    said = _everything_said(sam) + _everything_said(doctor)
    assert len(said) > 15, sam.transcript()
    wrong = {line for text in said for line in _misread(text)}
    assert not wrong, "\n".join(sorted(wrong))
    # The names are there, whole, each in its own isolate.
    everything = "\n".join(said)
    for name in ("Sam Rivera", "Lily Rivera", "Alex Chen", "Jo Park", "/help"):
        assert f"\u2068{name}\u2069" in everything, name
    assert not server.errors, server.errors  # every message's HTML parsed


def test_marks_go_between_tags_and_around_what_must_stay_whole() -> None:
    template = AR("<b>{requester}</b> asks to access your patient portal.")
    sent = bidi.right_to_left(template.format(requester="Tom &amp; Jerry &lt;Jr&gt;"), html=True)
    assert sent.startswith("\u200f") and "<b>\u2068Tom &amp; Jerry &lt;Jr&gt;\u2069</b>" in sent
    lines = [
        "• Sam Rivera · 15\u200f/05\u200f/2026",
        "/start — ابدأ",
        "https://t.me/portal_test_bot?start=abc",
        '<a href="https://example.com/x">Example</a> رابط',
        "<code>ABC-123</code> رمز",
        "Email: sam@example.com.",
    ]
    assert bidi.right_to_left("\n".join(lines), html=True).split("\n") == [
        "\u200f• \u2068Sam Rivera\u2069 · 15\u200f/05\u200f/2026",
        "\u200f\u2068/start\u2069 — ابدأ",
        "\u200fhttps://t.me/portal_test_bot?start=abc",
        '\u200f<a href="https://example.com/x">\u2068Example\u2069</a> رابط',
        "\u200f\u2068<code>ABC-123</code>\u2069 رمز",
        "\u200f\u2068Email: sam@example.com\u2069.",
    ]
    # A plain-text alert: "<" and "&" are letters like any other, and nothing is done twice.
    alert = bidi.right_to_left("Tom & Jerry <Jr>: تم", html=False)
    assert alert == "\u200f\u2068Tom & Jerry <Jr>\u2069: تم"
    assert bidi.right_to_left(alert, html=False) == alert
    # Only right-to-left Translators mark their messages; data cannot bring marks in.
    assert esc("Sam\u200f \u202eRivera\u2069 &") == "Sam Rivera &amp;"
    assert clean_email("sam\u200f@example.com") is None
    assert translator("en")("<b>{requester}</b> asks to access your patient portal.")[0] == "<"
