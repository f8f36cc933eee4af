"""`python -m bot playground`, clicked through in a real browser (Playwright driving Debian's
Chromium), plus the checks that need no browser: loopback only, and a clean Ctrl-C.

The browser tests are skipped, with the reason shown by pytest -ra, only when
/usr/bin/chromium is missing; .ci/run installs it. Nothing here downloads a browser.
Set PLAYGROUND_SCREENSHOT=docs/playground.png to refresh the README's screenshot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import Locator, Page, async_playwright, expect
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import BadRequest

from bot.settings import load_settings
from playground.page import is_loopback_host, is_loopback_ip
from playground.runner import PARENT_ID, Playground, playground
from tests.helpers import PRACTICE

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
browser_test = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium "
    "(apt-get install -y chromium; .ci/run does this)",
)
VIEWPORT = {"width": 1240, "height": 810}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Playground]:
    settings = load_settings(practice_name=PRACTICE)
    async with playground(settings, db_path=tmp_path / "portal.db", poll_timeout=1) as running:
        yield running


@pytest.fixture
async def page(pg: Playground) -> AsyncIterator[Page]:
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        tab = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
        tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        tab.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        await tab.goto(pg.url)
        await expect(tab.locator("#connection")).to_have_text("live")
        yield tab
        await browser.close()
    assert not problems, problems


def phone(page: Page, who: str) -> Locator:
    return page.locator(f'[data-phone="{who}"]')


def last_bot(page: Page, who: str) -> Locator:
    return phone(page, who).locator(".msg.bot").last


async def say(page: Page, who: str, text: str) -> None:
    box = phone(page, who).locator("input[name=text]")
    await box.fill(text)
    await box.press("Enter")
    await expect(phone(page, who).locator(".msg.user").last).to_contain_text(text)


async def tap(page: Page, who: str, label: str) -> None:
    """The newest inline button with exactly this label on that phone."""
    exactly = re.compile(f"^{re.escape(label)}$")
    await phone(page, who).locator(".inline-keyboard button").filter(has_text=exactly).last.click()


async def bot_says(page: Page, who: str, text: str) -> None:
    """The newest bot message on that phone says this (an edited one included)."""
    await expect(last_bot(page, who)).to_contain_text(text)


async def bot_said(page: Page, who: str, text: str) -> Locator:
    """Some bot message on that phone says this (for replies followed by others)."""
    said = phone(page, who).locator(".msg.bot", has_text=text).last
    await expect(said).to_be_visible()
    return said


# --- the journey --------------------------------------------------------------------------


@browser_test
async def test_the_whole_journey_in_three_phones(pg: Playground, page: Page) -> None:
    # The parent opens the demo link shown in the empty chat and signs in.
    sam = phone(page, "parent")
    await expect(sam.locator(".hint")).to_contain_text("12/4/1986")
    await sam.get_by_role("button", name="Tap to open your invite link").click()
    opened = sam.locator(".msg.user").last
    await expect(opened).to_contain_text("/start")
    await expect(opened).not_to_contain_text(pg.links["parent"].split("start=")[1])  # as Telegram
    await bot_says(page, "parent", "date of birth")
    await say(page, "parent", "12/4/1986")
    await bot_said(page, "parent", "You're now signed in")
    # The demo's waiting request from Alex arrives as soon as Sam is signed in.
    await bot_says(page, "parent", "Alex Chen asks to access your patient portal")

    # The practitioner invites a new patient; the link opens on the phone chosen for it.
    doctor = phone(page, "practitioner")
    await doctor.get_by_role("button", name="Send /invite").click()
    await bot_says(page, "practitioner", "full name")
    await say(page, "practitioner", "Jamie Lee")
    await bot_says(page, "practitioner", "Jamie Lee's date of birth")
    await say(page, "practitioner", "3/2/1985")
    await tap(page, "practitioner", "Skip")
    await expect(doctor.locator(".msg.bot img")).to_have_count(1)  # the invite's QR code
    qr_loaded = await doctor.locator(".msg.bot img").evaluate("img => img.naturalWidth > 0")
    assert qr_loaded
    invite = doctor.locator(".msg.bot", has_text="Invite for Jamie Lee is ready")
    await expect(invite.locator("strong")).to_have_text("Jamie Lee")  # the bot's <b>
    await invite.locator("a", has_text="https://t.me/").click()
    await page.locator("#chooser").get_by_role("button", name="Sam Rivera").click()
    await bot_says(page, "parent", "already signed in to a portal")

    # The parent adds a child: no login of their own.
    await say(page, "parent", "/addpatient")
    await bot_says(page, "parent", "full name")
    await say(page, "parent", "Mia Rivera")
    await bot_says(page, "parent", "What is Mia Rivera to you?")
    for label, next_prompt in (
        ("Child", "Which access do you need?"),
        ("Clinical", "What may you do in their portal?"),
        ("Edit", "Does Mia Rivera have their own portal login?"),
        ("No, create an account for them", "Mia Rivera's date of birth"),
    ):
        await tap(page, "parent", label)
        await bot_says(page, "parent", next_prompt)
    await say(page, "parent", "3/2/2015")
    await bot_says(page, "parent", "Please check:")
    await tap(page, "parent", "✅ Confirm")
    await bot_says(page, "parent", "Mia Rivera's account is ready")

    # The partner signs in with their own link, so a request can reach them.
    alex = phone(page, "partner")
    await expect(alex.locator(".hint")).to_contain_text("30/11/1985")
    await alex.get_by_role("button", name="Tap to open your invite link").click()
    await bot_says(page, "partner", "date of birth")
    await say(page, "partner", "30/11/1985")
    await bot_says(page, "partner", "You're now signed in")

    # The parent asks the partner for access by their portal email.
    await say(page, "parent", "/addpatient")
    await bot_says(page, "parent", "full name")
    await say(page, "parent", "Alex Chen")
    for label, next_prompt in (
        ("Partner", "Which access do you need?"),
        ("Clinical", "What may you do in their portal?"),
        ("View", "Does Alex Chen have their own portal login?"),
        ("Yes, they have a login", "What email does Alex Chen use"),
    ):
        await tap(page, "parent", label)
        await bot_says(page, "parent", next_prompt)
    await say(page, "parent", "alex.chen@example.com")
    await bot_says(page, "parent", "Please check:")
    await tap(page, "parent", "✅ Confirm")
    await bot_says(page, "parent", "has been asked to approve")
    await bot_says(page, "partner", "Sam Rivera asks to access your patient portal")
    if shot := os.environ.get("PLAYGROUND_SCREENSHOT"):
        await page.mouse.move(0, 0)  # no hover highlight in the picture
        await page.screenshot(path=str(ROOT / shot))

    # The partner approves with one tap; both phones show the outcome.
    card_id = await last_bot(page, "partner").get_attribute("data-id")
    await tap(page, "partner", "✅ Approve")
    card = alex.locator(f'.msg.bot[data-id="{card_id}"]')
    await expect(card).to_contain_text("Approved")
    await expect(card).to_have_attribute("data-edited", "1")  # edited in place, not a new one
    await expect(card.locator(".inline-keyboard")).to_have_count(0)
    await bot_says(page, "parent", "Alex Chen approved your request")

    # The parent switches to a child's portal and views it; every view says whose it is.
    await say(page, "parent", "/switch")
    await bot_says(page, "parent", "Whose portal would you like to see?")
    await (
        phone(page, "parent")
        .locator(".inline-keyboard button")
        .filter(has_text="Lily Rivera (Daughter)")
        .last.click()
    )
    # The tap lands on her appointments; her invoices are one more tap, in place.
    await bot_says(page, "parent", "Viewing: Lily Rivera (Daughter)")
    await bot_says(page, "parent", "Upcoming appointments")
    await tap(page, "parent", "🧾 Invoices")
    await bot_says(page, "parent", "HFP-")  # an invoice number: the page, not its button

    await expect(page.locator("#violations")).to_be_hidden()
    assert not pg.server.errors, pg.server.errors


# --- safety, menus and warnings -------------------------------------------------------------


@browser_test
async def test_typed_markup_is_shown_as_text_in_every_tab(pg: Playground, page: Page) -> None:
    sneaky = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    assert page.context.browser is not None
    second = await page.context.browser.new_page()
    await second.goto(pg.url)
    await expect(second.locator("#connection")).to_have_text("live")

    await say(page, "practitioner", "/invite")
    await bot_says(page, "practitioner", "full name")
    await say(page, "practitioner", sneaky)

    for tab in (page, second):  # state lives on the server: both tabs show the same chat
        echo = last_bot(tab, "practitioner")
        await expect(echo).to_contain_text(f"{sneaky}'s date of birth")
        assert await echo.locator("script, img").count() == 0
        assert await tab.locator(".bubble script").count() == 0
        assert await tab.title() == "portal-bot playground"
    # Inside the bot's own formatting too: the invite names the patient in bold.
    await say(page, "practitioner", "3/2/1985")
    await tap(page, "practitioner", "Skip")
    ready = phone(second, "practitioner").locator(".msg.bot", has_text="is ready")
    await expect(ready.locator("strong")).to_have_text(sneaky)
    assert await second.title() == "portal-bot playground"
    await second.close()


@browser_test
async def test_command_menu_and_broken_rules_are_shown(pg: Playground, page: Page) -> None:
    bot = pg.app.bot
    await bot.set_my_commands([BotCommand("start", "Home"), BotCommand("help", "What I can do")])
    sam = phone(page, "parent")
    await sam.get_by_role("button", name="Tap to open your invite link").click()
    await bot_says(page, "parent", "date of birth")
    await bot.set_my_commands(
        [BotCommand("help", "Help for Sam only")], scope=BotCommandScopeChat(PARENT_ID)
    )

    await sam.get_by_role("button", name="Commands").click()
    await expect(sam.locator(".menu")).to_contain_text("/help")
    await expect(sam.locator(".menu")).to_contain_text("Help for Sam only")
    await expect(sam.locator(".menu")).not_to_contain_text("/start")
    alex = phone(page, "partner")
    await alex.get_by_role("button", name="Commands").click()
    await expect(alex.locator(".menu")).to_contain_text("/start")
    await alex.locator(".menu").get_by_role("button", name="/help").click()
    await bot_says(page, "partner", "What I can do")

    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(PARENT_ID, "x" * 4097)
    warning = page.locator("#violations")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("sendMessage to Sam Rivera")
    await expect(warning).to_contain_text("message is too long")


# --- no browser needed ----------------------------------------------------------------------


async def test_only_loopback_is_served(pg: Playground) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(pg.url) as resp:
            assert resp.status == 200
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        for host in ("evil.example", "192.168.1.20:8080", "127.0.0.1.nip.io"):
            async with http.get(pg.url, headers={"Host": host}) as resp:
                assert resp.status == 403, host
        async with http.post(
            f"{pg.url}api/phones/parent/send",
            json={"text": "hi"},
            headers={"Origin": "http://evil.example"},
        ) as resp:
            assert resp.status == 403
        async with http.post(f"{pg.url}api/phones/parent/send", data={"text": "hi"}) as resp:
            assert resp.status == 415  # a plain form post from another site gets nowhere
    assert is_loopback_ip("127.0.0.1") and is_loopback_ip("::1")
    assert not is_loopback_ip("192.168.1.20") and not is_loopback_ip(None)
    assert is_loopback_host("localhost:8080") and is_loopback_host("[::1]:80")
    assert not is_loopback_host("localhost.evil.example")
    assert pg.server.user(PARENT_ID, "Sam").messages == []


def test_playground_command_starts_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bot", "playground", "--port", "0", "--db"]
    with subprocess.Popen(
        [*command, str(tmp_path / "p.db")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            url = ""
            for line in proc.stdout:  # ends early only if the command died
                if "open http://127.0.0.1:" in line:
                    url = line.split("open ", 1)[1].split()[0]
                    break
            assert url, proc.stderr.read()
            assert "portal-bot playground" in asyncio.run(_get(url))
            asyncio.run(_command_menus_set(url))  # the job queue has run a job by now
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "Stopping" in out
    assert "Traceback" not in err, err
    # "Playground ready" is not buried under the scheduler's line for every job it runs.
    assert "apscheduler" not in err, err
    assert (tmp_path / "p.db").exists()


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


@browser_test
async def test_arabic_bubbles_read_right_to_left(page: Page) -> None:
    sam = phone(page, "parent")
    await sam.get_by_role("button", name="Tap to open your invite link").click()
    await bot_says(page, "parent", "date of birth")
    english_id = await last_bot(page, "parent").get_attribute("data-id")
    english = sam.locator(f'.msg.bot[data-id="{english_id}"] .bubble')
    await say(page, "parent", "/language")
    await tap(page, "parent", "العربية")
    await say(page, "parent", "/help")
    arabic = last_bot(page, "parent").locator(".bubble")
    await expect(arabic.locator(".command").first).to_have_text("/start")
    # Each bubble takes its direction from its text, as in Telegram's apps, line by line.
    assert await english.evaluate("b => getComputedStyle(b).direction") == "ltr"
    assert await arabic.evaluate("b => getComputedStyle(b).direction") == "rtl"
    assert await arabic.evaluate("b => getComputedStyle(b).unicodeBidi") == "plaintext"
    # The line "/start — …" starts at the right edge, its command still reading "/start".
    layout = await arabic.evaluate(
        """b => {
            const command = b.querySelector(".command"), text = command.firstChild;
            const range = document.createRange();
            const x = (i) => { range.setStart(text, i); range.setEnd(text, i + 1);
                               return range.getBoundingClientRect().x; };
            const padding = parseFloat(getComputedStyle(b).paddingRight);
            const inner = b.getBoundingClientRect().right - padding;
            return { gap: inner - command.getBoundingClientRect().right, slash: x(0), s: x(1) };
        }"""
    )
    assert layout["gap"] < 2, layout
    assert layout["slash"] < layout["s"], layout


async def _command_menus_set(url: str) -> None:
    """Follow the page's events until the bot's command menus are there (a job sets them)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}api/events") as resp:
        async with asyncio.timeout(10):
            async for line in resp.content:
                if line.startswith(b"data: ") and json.loads(line[6:])["phones"][0]["commands"]:
                    return


# --- playground polish --------------------------------------------------------------------


@browser_test
async def test_a_phone_sized_screen_starts_on_sams_phone_without_sideways_scroll(
    pg: Playground, page: Page
) -> None:
    await page.set_viewport_size({"width": 360, "height": 640})
    sam = phone(page, "parent")
    start = sam.get_by_role("button", name="Tap to open your invite link")
    await expect(start).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    box = await start.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 640, box  # above the fold
    # Each demo person's date of birth and portal email: Sam asks Alex by that email.
    for who, email, dob in (
        ("parent", "sam.rivera@example.com", "12/4/1986"),
        ("partner", "alex.chen@example.com", "30/11/1985"),
    ):
        await expect(phone(page, who).locator(".hint")).to_contain_text(email)
        await expect(phone(page, who).locator(".hint")).to_contain_text(dob)
        device = page.locator(f'.device[data-device="{who}"] .device-facts')
        await expect(device).to_have_text(f"{email} · born {dob}")
    await say(page, "parent", "/start")  # the hint goes; the email stays in sight
    await expect(sam.locator(".hint")).to_have_count(0)
    await expect(page.locator('.device[data-device="partner"]')).to_contain_text(
        "alex.chen@example.com"
    )


@browser_test
async def test_bubble_times_are_the_practices(pg: Playground, page: Page) -> None:
    assert page.context.browser is not None
    context = await page.context.browser.new_context(timezone_id="America/New_York")
    tab = await context.new_page()
    await tab.goto(pg.url)
    await expect(tab.locator("#connection")).to_have_text("live")
    await say(tab, "parent", "/start")
    await bot_says(tab, "parent", "invite link")
    sent = pg.server.known_user(PARENT_ID)
    assert sent is not None
    shown = await last_bot(tab, "parent").locator(".meta").text_content()
    moment = dt.datetime.fromtimestamp(sent.last.date, ZoneInfo(pg.settings.timezone))
    assert shown == moment.strftime("%H:%M"), (shown, pg.settings.timezone)
    await context.close()
