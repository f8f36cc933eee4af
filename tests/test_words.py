"""Words on screen: money as the locale writes it, one style per kind of date, and pop-up
alerts in plain text."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes

from bot import access
from bot.access import AccessRequest, Area
from bot.callbacks import TurnPage
from bot.i18n import translator
from storage import Database, portal
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import signed_in
from tests.test_cli import run_cli
from tests.test_manage import _patient_id

ROOT = Path(__file__).resolve().parent.parent
NBSP = "\u00a0"


async def _ann_with_papers(db: Database, server: BotAPIServer, language: str = "en") -> SimUser:
    """Ann, born 3 September 2015 (as a dependent's date would be), with invoices in euros
    and dollars and a record, reading the bot in `language`."""
    ann = server.user(700, "Ann")
    await signed_in(db, ann, "Ann Lee", dt.date(2015, 9, 3))
    ann_id = await _patient_id(db, 700)
    async with db.transaction() as conn:
        await portal.add_invoice(conn, ann_id, "INV-1", dt.date(2026, 11, 1), 4800, "EUR", False)
        await portal.add_invoice(conn, ann_id, "INV-2", dt.date(2016, 9, 5), 12050, "AUD", True)
        await portal.add_record(conn, ann_id, dt.date(2016, 9, 5), "result", "HbA1c", "5.4 %")
    if language != "en":
        await ann.send("/language")
        await ann.tap({"ar": "العربية", "vi": "Tiếng Việt", "zh_Hans": "简体中文"}[language])
    return ann


async def test_money_is_written_as_the_locale_writes_it(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = await _ann_with_papers(bot_db, server)
    await ann.send("/invoices")
    assert f"EUR{NBSP}48.00 · Unpaid" in ann.last.text and "EUR48" not in ann.last.text
    assert "$120.50 · Paid" in ann.last.text  # the practice's own currency: no code
    await ann.send("/language")
    await ann.tap("Tiếng Việt")
    await ann.send("/invoices")
    assert f"48,00{NBSP}€" in ann.last.text and f"120,50{NBSP}AU$" in ann.last.text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", [f"EUR{NBSP}48.00", "$48.00", f"-EUR{NBSP}48.00", f"JPY{NBSP}4,800"]),
        ("zh_Hans", ["€48.00", "AU$48.00", "-€48.00", "JP¥4,800"]),
        ("vi", [f"48,00{NBSP}€", f"48,00{NBSP}AU$", f"-48,00{NBSP}€", f"4.800{NBSP}¥"]),
        (
            "ar",
            [
                f"\u200f48.00{NBSP}€",
                f"\u200f48.00{NBSP}AU$",
                f"\u200f-48.00{NBSP}€",
                f"\u200f4,800{NBSP}JP¥",
            ],
        ),
    ],
)
def test_currency_symbols_stand_apart_from_digits_where_cldr_says(
    language: str, expected: list[str]
) -> None:
    _ = translator(language)
    shown = [_.money(4800, "EUR"), _.money(4800, "AUD"), _.money(-4800, "EUR")]
    assert [*shown, _.money(4800, "JPY")] == expected


def _calls(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            found.append((name, node.lineno))
    return found


def test_money_and_dates_are_formatted_in_one_place() -> None:
    """Every amount and every date people read goes through bot/i18n.py's named formats."""
    formatting = {
        "format_currency",
        "format_decimal",
        "format_date",
        "format_datetime",
        "format_skeleton",
        "format_time",
        "strftime",
    }
    stray = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for folder in ("bot", "handlers", "conversations")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "bot" / "i18n.py"
        for name, line in _calls(path)
        if name in formatting
    ]
    assert not stray, stray


async def test_each_kind_of_date_has_one_style(server: BotAPIServer, bot_db: Database) -> None:
    ann = await _ann_with_papers(bot_db, server)
    await ann.send("/details")
    assert "Date of birth: 3 Sept 2015" in ann.last.text
    await ann.send("/invoices")
    assert "INV-1 · 1 Nov 2026" in ann.last.text and "INV-2 · 5 Sept 2016" in ann.last.text
    await ann.send("/records")
    assert "Result · 5 Sept 2016" in ann.last.text


async def test_arabic_invoices_write_the_month(server: BotAPIServer, bot_db: Database) -> None:
    ann = await _ann_with_papers(bot_db, server, "ar")
    await ann.send("/invoices")
    assert "1 نوفمبر 2026" in ann.last.text and "01/11/2026" not in ann.last.text.replace(
        "\u200f", ""
    )
    await ann.send("/details")
    assert "3 سبتمبر 2015" in ann.last.text


def test_a_date_of_birth_that_does_not_exist_is_called_that(tmp_path: Path) -> None:
    env = {"PORTAL_DB_PATH": str(tmp_path / "p.db")}
    common = ("invite", "--name", "Ann Lee", "--bot-username", "portal_bot", "--dob")
    impossible = run_cli(*common, "1985-02-30", env=env)
    assert impossible.returncode == 1
    assert impossible.stderr.strip() == (
        "error: invite: date of birth '1985-02-30' is not a real date"
    )
    written_otherwise = run_cli(*common, "30/02/1985", env=env)
    assert written_otherwise.stderr.strip() == (
        "error: invite: date of birth '30/02/1985' is not YYYY-MM-DD"
    )


# --- Pop-up alerts -------------------------------------------------------------------------


async def test_an_alert_naming_someone_is_plain_text(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    ann_id = await _patient_id(bot_db, 700)
    name = "Tom & Jerry <Jr>"
    request = AccessRequest(name, Relationship.SON, None, Level.ADMINISTRATIVE, Role.VIEW)
    tom, _ = await access.create_dependent(bot_db, ann_id, name, dt.date(2019, 1, 2), request)
    await ann.send("/switch")
    await ann.tap("Tom & Jerry <Jr> (Son) · Administrative")
    await ann.tap_data(TurnPage(Area.RECORDS, tom.id, 0).encode(), message=ann.last)
    assert ann.alerts[-1] == (
        "Tom & Jerry <Jr>'s clinical records are not shared with you: your access is "
        "Administrative (appointments and invoices only).",
        True,
    )
    assert not server.garbled


@pytest.fixture
async def plain_app(server: BotAPIServer) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """A bare PTB application that answers every tap with an escaped alert."""

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("Tom &amp; Jerry &lt;Jr&gt;", show_alert=True)

    application = ApplicationBuilder().token(server.token).base_url(server.base_url).build()
    application.add_handler(CallbackQueryHandler(answer))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    yield application
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


async def test_the_emulator_notices_an_escaped_alert(
    server: BotAPIServer,
    plain_app: Application,  # type: ignore[type-arg]
) -> None:
    sam = server.user(900, "Sam")
    await sam.send("/start", expect=0)
    await plain_app.bot.send_message(
        900,
        "Tap",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]]),
    )
    await sam.tap("x")
    assert server.garbled == [
        {"method": "answerCallbackQuery", "text": "Tom &amp; Jerry &lt;Jr&gt;"}
    ]
    server.garbled.clear()  # seen: the fixture's own check is for the bot's mistakes
