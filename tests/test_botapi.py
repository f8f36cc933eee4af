"""Tests of the Bot API emulator itself, driven by a real python-telegram-bot Application."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.botapi import PARAMETERS, BotAPIServer, SimUser

TOKEN = "123456:TEST"
Context = ContextTypes.DEFAULT_TYPE
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def tiny_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(f"b{i}", callback_data=d) for i, d in enumerate(data)]]
    )


@pytest.fixture
async def server() -> AsyncIterator[BotAPIServer]:
    srv = BotAPIServer(token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def app(server: BotAPIServer) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    yield application
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


async def started(server: BotAPIServer, user_id: int, name: str) -> SimUser:
    """A user who has opened the chat (so the bot may write), with nothing else going on."""
    user = server.user(user_id, name)
    await user.send("/start", expect=0)
    return user


async def test_echo_round_trip(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    async def start(update: Update, context: Context) -> None:
        assert update.effective_user is not None and update.effective_message is not None
        user = update.effective_user
        await update.effective_message.reply_text(
            f"Hello, {user.first_name}! lang={user.language_code}"
        )

    async def echo(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    alice = server.user(1001, "Alice", language_code="de")

    assert [m.text for m in await alice.send("/start")] == ["Hello, Alice! lang=de"]
    assert [m.text for m in await alice.send("ping")] == ["echo: ping"]
    assert [(m.message_id, m.from_bot, m.text) for m in alice.messages] == [
        (1, False, "/start"),
        (2, True, "Hello, Alice! lang=de"),
        (3, False, "ping"),
        (4, True, "echo: ping"),
    ]
    assert alice.last.text == "echo: ping"
    assert "#4 bot: echo: ping" in alice.transcript()
    assert [name for name, _ in server.calls].count("sendMessage") == 2
    assert server.errors == []


async def test_tap_answers_and_edits(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    second_answer: list[str] = []

    async def menu(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "Continue?",
            reply_markup=InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton("Yes, go on", callback_data="yes"),
                        InlineKeyboardButton("No", callback_data="no"),
                    ],
                    [InlineKeyboardButton("Website", url="https://example.org")],
                ]
            ),
        )

    async def on_tap(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Noted", show_alert=True)
        try:
            await query.answer()
        except BadRequest as exc:
            second_answer.append(exc.message)
        await query.edit_message_text(f"You chose {query.data}")

    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(on_tap))
    bob = server.user(1002, "Bob")
    [shown] = await bob.send("/menu")
    assert shown.labels == ["Yes, go on", "No", "Website"]
    with pytest.raises(AssertionError, match="'Website' is a url button"):
        await bob.tap("Website")

    changed = await bob.tap("Yes", expect=2)  # a unique substring of "Yes, go on"

    assert changed == [shown]
    assert (shown.text, shown.edited, shown.buttons) == ("You chose yes", 1, [])
    assert bob.alerts == [("Noted", True)]
    assert second_answer == ["Query is too old and response timeout expired or query id is invalid"]
    assert [e["description"] for e in server.errors] == [
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    ]
    with pytest.raises(AssertionError, match="no button 'No'"):
        await bob.tap("No")  # editing without reply_markup removed the keyboard


async def test_send_photo_bytes(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    carol = await started(server, 1003, "Carol")
    png = tiny_png(120, 80)

    sent = await app.bot.send_photo(
        carol.id, photo=png, caption="<b>Your QR</b> code", parse_mode="HTML"
    )

    assert [(p.width, p.height) for p in sent.photo] == [(90, 60), (120, 80)]
    assert sent.caption == "Your QR code"
    assert (carol.last.kind, carol.last.photo, carol.last.caption) == ("photo", png, "Your QR code")
    telegram_file = await app.bot.get_file(sent.photo[-1].file_id)
    assert bytes(await telegram_file.download_as_bytearray()) == png
    await app.bot.send_photo(carol.id, photo=sent.photo[-1].file_id)
    assert carol.last.photo == png and carol.last.message_id == sent.message_id + 1
    with pytest.raises(BadRequest):
        await app.bot.send_photo(carol.id, photo=b"definitely not an image")
    with pytest.raises(BadRequest):
        await app.bot.send_photo(carol.id, photo=png, caption="c" * 1025)
    assert [e["description"] for e in server.errors] == [
        "Bad Request: IMAGE_PROCESS_FAILED",
        "Bad Request: message caption is too long",
    ]


async def test_html_validation(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    dave = await started(server, 1004, "Dave")
    raw = '<b>Hi</b> <i>there</i>, <a href="https://example.org">site</a> &amp; co: 1 &lt; 2'

    sent = await app.bot.send_message(dave.id, raw, parse_mode="HTML")

    assert dave.last.text == sent.text == "Hi there, site & co: 1 < 2"
    assert dave.last.html == raw
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("italic", 3, 5),
        ("text_link", 10, 4),
    ]
    with pytest.raises(BadRequest, match="find end tag"):
        await app.bot.send_message(dave.id, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)unsupported start tag"):
        await app.bot.send_message(dave.id, "a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved"):
        await app.bot.send_message(dave.id, "Done.", parse_mode="MarkdownV2")
    assert [e["description"] for e in server.errors] == [
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with "
        "the preceding '\\'",
    ]
    await app.bot.send_message(dave.id, "a &lt; b", parse_mode="HTML")
    assert dave.last.text == "a < b"
    await app.bot.send_message(dave.id, "Tom & Jerry", parse_mode="HTML")  # Telegram allows it
    assert dave.last.text == "Tom & Jerry"
    await app.bot.send_message(dave.id, "*Done*\\.", parse_mode="MarkdownV2")
    assert dave.last.text == "Done."
    assert len(server.errors) == 3


async def test_text_length_limit(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    eve = await started(server, 1005, "Eve")

    await app.bot.send_message(eve.id, "x" * 4096)
    assert len(eve.last.text) == 4096
    with pytest.raises(BadRequest, match="too long"):
        await app.bot.send_message(eve.id, "x" * 4097)
    await app.bot.send_message(eve.id, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    assert eve.last.text == "y" * 4096  # tags do not count
    with pytest.raises(BadRequest, match="too long"):
        await app.bot.send_message(eve.id, "&lt;" * 4097, parse_mode="HTML")  # one char each
    with pytest.raises(BadRequest):
        await app.bot.send_message(eve.id, "  \n ")
    assert [e["description"] for e in server.errors] == [
        "Bad Request: message is too long",
        "Bad Request: message is too long",
        "Bad Request: text must be non-empty",
    ]


async def test_callback_data_is_limited_to_64_bytes(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    fay = await started(server, 1006, "Fay")

    await app.bot.send_message(fay.id, "ok", reply_markup=keyboard("é" * 32))  # 64 bytes
    assert fay.last.buttons[0][0].callback_data == "é" * 32
    for data in ("é" * 33, "a" * 65):  # 66 and 65 bytes
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await app.bot.send_message(fay.id, "too big", reply_markup=keyboard(data))
    with pytest.raises(BadRequest):
        await app.bot.send_message(
            fay.id,
            "local",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("site", url="http://localhost:8000/x")]]
            ),
        )
    assert [e["description"] for e in server.errors] == [
        "Bad Request: BUTTON_DATA_INVALID",
        "Bad Request: BUTTON_DATA_INVALID",
        "Bad Request: BUTTON_URL_INVALID",
    ]
    assert fay.last.text == "ok"


async def test_edits_and_deletes(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    gus = await started(server, 1007, "Gus")
    bot = app.bot
    sent = await bot.send_message(gus.id, "Same", reply_markup=keyboard("a"))

    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text(
            "Same", chat_id=gus.id, message_id=sent.message_id, reply_markup=keyboard("a")
        )
    assert server.errors[-1]["description"] == NOT_MODIFIED
    await bot.edit_message_text("Same", chat_id=gus.id, message_id=sent.message_id)
    assert (gus.last.text, gus.last.buttons, gus.last.edited) == ("Same", [], 1)
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(chat_id=gus.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="to edit not found"):
        await bot.edit_message_text("x", chat_id=gus.id, message_id=999)
    assert await bot.delete_message(gus.id, sent.message_id)
    with pytest.raises(BadRequest, match="to delete not found"):
        await bot.delete_message(gus.id, sent.message_id)
    assert [m.text for m in gus.messages] == ["/start"]
    assert "(edited x1, deleted)" in gus.transcript()
    assert [e["description"].split(":")[1].strip() for e in server.errors] == [
        "message is not modified",
        "message is not modified",
        "message to edit not found",
        "message to delete not found",
    ]


async def test_blocked_user_and_unknown_chat(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    statuses: list[str] = []

    async def on_member(update: Update, context: Context) -> None:
        assert update.my_chat_member is not None
        statuses.append(update.my_chat_member.new_chat_member.status)

    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.MY_CHAT_MEMBER))
    hal = await started(server, 1008, "Hal")

    server.block(hal.id)
    await server.wait_idle()
    assert statuses == ["kicked"]
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(hal.id, "hello?")
    assert {k: server.errors[-1][k] for k in ("method", "error_code", "description")} == {
        "method": "sendMessage",
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    server.unblock(hal.id)
    await server.wait_idle()
    assert statuses == ["kicked", "member"]
    await app.bot.send_message(hal.id, "welcome back")
    assert hal.last.text == "welcome back"
    never_wrote = server.user(1009, "Ida")
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(never_wrote.id, "hi")


async def test_commands_are_stored_per_language(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    bot = app.bot
    await bot.set_my_commands(
        [BotCommand("start", "Start"), BotCommand("help", "Help")], language_code="en"
    )
    await bot.set_my_commands([("start", "Starten")], language_code="de")
    await bot.set_my_commands(
        [("invite", "Invite someone")], scope=BotCommandScopeAllPrivateChats()
    )

    assert server.commands == {
        ("default", "en"): [
            {"command": "start", "description": "Start"},
            {"command": "help", "description": "Help"},
        ],
        ("default", "de"): [{"command": "start", "description": "Starten"}],
        ('{"type":"all_private_chats"}', ""): [
            {"command": "invite", "description": "Invite someone"}
        ],
    }
    assert [(c.command, c.description) for c in await bot.get_my_commands(language_code="de")] == [
        ("start", "Starten")
    ]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("Start-Now", "Go")])
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("start", " ")])
    assert [e["description"] for e in server.errors] == [
        "Bad Request: BOT_COMMAND_INVALID",
        "Bad Request: command description must be non-empty",
    ]
    await bot.delete_my_commands(language_code="de")
    assert ("default", "de") not in server.commands


async def test_open_link_payload_rules(server: BotAPIServer, app: Application) -> None:  # type: ignore[type-arg]
    async def start(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"args={context.args}")

    app.add_handler(CommandHandler("start", start))
    jan = server.user(1010, "Jan")
    link = f"https://t.me/{server.bot_username}?start="

    [reply] = await jan.open_link(link + "a" * 65)
    assert (jan.messages[0].text, reply.text) == ("/start", "args=[]")
    [reply] = await jan.open_link(link + "b" * 64)
    assert reply.text == f"args=['{'b' * 64}']"
    [reply] = await jan.open_link(f"tg://resolve?domain={server.bot_username}&start=inv_42")
    assert reply.text == "args=['inv_42']"
    with pytest.raises(AssertionError, match="not @portal_test_bot"):
        await jan.open_link("https://t.me/other_bot?start=x")


async def test_waits_for_trailing_messages_and_reports_timeouts(
    server: BotAPIServer, app: Application
) -> None:  # type: ignore[type-arg]
    async def two(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("one")
        await asyncio.sleep(0.01)  # shorter than the quiet period: still the same reaction
        await update.effective_message.reply_text("two")

    app.add_handler(CommandHandler("two", two))
    kim = server.user(1011, "Kim")

    assert [m.text for m in await kim.send("/two")] == ["one", "two"]
    with pytest.raises(
        AssertionError,
        match=r"(?s)timed out .*waiting for 1 bot events.*"
        r"#4 Kim: nobody answers this",
    ):
        await kim.send("nobody answers this", timeout=0.3)


async def test_second_get_updates_terminates_the_first(server: BotAPIServer) -> None:
    first, second = Bot(TOKEN, base_url=server.base_url), Bot(TOKEN, base_url=server.base_url)
    async with first, second:
        waiting = asyncio.create_task(first.get_updates(timeout=5))
        for _ in range(500):
            if any(name == "getUpdates" for name, _ in server.calls):
                break
            await asyncio.sleep(0.01)
        assert await second.get_updates(timeout=0) == ()
        with pytest.raises(Conflict) as info:
            await waiting
    expected = (
        "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running"
    )
    assert str(info.value) == expected
    assert [(e["method"], e["error_code"], e["description"]) for e in server.errors] == [
        ("getUpdates", 409, expected)
    ]


async def test_raw_http_errors(server: BotAPIServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}{TOKEN}/getMe") as resp:
            assert resp.status == 200
            assert (await resp.json())["result"]["username"] == "portal_test_bot"
        async with http.post(f"{server.base_url}654321:WRONG/getMe") as resp:
            assert (resp.status, await resp.json()) == (
                401,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
        async with http.post(f"{server.base_url}{TOKEN}/sendTelepathy") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found: method not found"
        body = {"chat_id": 1, "text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "x"}]]}}
        async with http.post(f"{server.base_url}{TOKEN}/sendMessage", json=body) as resp:
            assert resp.status == 400
            assert (await resp.json())["description"] == (
                "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in "
                "the inline keyboard"
            )
    assert [e["error_code"] for e in server.errors] == [401, 404, 400]


async def test_a_group_its_members_and_the_bot_leaving(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
) -> None:
    seen: list[tuple[str, int, str, str]] = []
    members: list[tuple[str, str, int]] = []

    async def note(update: Update, context: Context) -> None:
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        assert chat is not None and message is not None
        seen.append((chat.type, chat.id, chat.title or "", user.first_name if user else "-"))
        await message.reply_text("noted", reply_markup=keyboard("g1"))

    async def tapped(update: Update, context: Context) -> None:
        assert update.callback_query is not None and update.effective_chat is not None
        await update.callback_query.answer(f"in {update.effective_chat.type}", show_alert=True)

    async def on_member(update: Update, context: Context) -> None:
        change = update.my_chat_member
        assert change is not None
        members.append((change.from_user.first_name, change.new_chat_member.status, change.chat.id))

    app.add_handler(MessageHandler(filters.ALL, note))
    app.add_handler(CallbackQueryHandler(tapped))
    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.MY_CHAT_MEMBER))
    ann, bob = server.user(1020, "Ann"), server.user(1021, "Bob")
    club = server.group(-4001, "Book club")
    with pytest.raises(AssertionError, match="the bot is not in group 'Book club'"):
        await club.send(ann, "anyone?")
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(club.id, "hello?")

    assert await club.add_bot(ann, expect=0) == []
    assert members == [("Ann", "member", -4001)]
    [reply] = await club.send(bob, "/hi@portal_test_bot")
    assert seen == [("group", -4001, "Book club", "Bob")]
    assert (reply.text, club.messages[0].sender) == ("noted", bob)
    assert ann.messages == [] and bob.messages == []  # nothing went to their private chats
    await club.tap(ann, "b0")
    assert ann.alerts == [("in group", True)] and bob.alerts == []
    assert "#1 Bob: /hi@portal_test_bot" in club.transcript()

    with pytest.raises(BadRequest, match="Can't leave private chats"):
        await app.bot.leave_chat((await started(server, 1022, "Cy")).id)
    assert await app.bot.leave_chat(club.id) is True
    await server.wait_idle()
    assert members[-1] == (server.bot_name, "left", -4001)  # Telegram tells the bot, too
    with pytest.raises(Forbidden, match="bot is not a member of the group chat"):
        await app.bot.send_message(club.id, "still here?")
    with pytest.raises(AssertionError, match="add_bot\\(\\) first"):
        await club.tap_data(ann, "g1", message=reply)

    news = server.group(-1001234567890, "News", "channel")
    with pytest.raises(AssertionError, match="only as administrators"):
        await news.add_bot(ann)
    await news.add_bot(ann, admin=True, expect=0)
    assert members[-1] == ("Ann", "administrator", news.id)
    await news.post("Today's news", expect=1)
    assert seen[-1] == ("channel", news.id, "News", "-") and news.last.text == "noted"
    assert news.messages[0].sender is None
    with pytest.raises(AssertionError, match="is not a group chat id"):
        server.group(-1001234567891, "Wrong", "group")


async def test_updates_not_in_allowed_updates_are_dropped(server: BotAPIServer) -> None:
    ann = server.user(1030, "Ann")
    group = server.group(-4002, "Team")
    group.bot_status = "member"  # added while the bot was away
    group.type_text(ann, "hello")
    async with Bot(TOKEN, base_url=server.base_url) as bot:
        waiting = asyncio.create_task(ann.send("/start", timeout=1))
        await asyncio.sleep(0)  # the task types its message
        assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
        with pytest.raises(AssertionError, match="Telegram dropped the update: 'message' is not"):
            await waiting
        assert server.allowed_updates == ["callback_query"]
        ann.type_text("/help")
        assert await bot.get_updates(timeout=0) == ()  # the choice is kept
        await server.wait_idle()  # dropped updates count as delivered
        await bot.get_updates(timeout=0, allowed_updates=[])  # back to the default
        assert server.allowed_updates is None
        ann.type_text("/help")
        [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.text == "/help"


async def test_markup_without_buttons_and_unknown_parameters_are_refused(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
) -> None:
    # Telegram lets both pass, but neither is what a bot means; refused and marked strict,
    # every end-to-end test fails on them (tests/conftest.py).
    gus = await started(server, 1040, "Gus")
    bot = app.bot
    with pytest.raises(BadRequest, match="without buttons"):
        await bot.send_message(gus.id, "hi", reply_markup=InlineKeyboardMarkup([]))
    sent = await bot.send_message(gus.id, "hi", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="without buttons"):
        await bot.edit_message_text(
            "ho", chat_id=gus.id, message_id=sent.message_id, reply_markup=InlineKeyboardMarkup([])
        )
    # PTB shows the description capitalised: "Unknown parameter ... for editmessagereplymarkup"
    with pytest.raises(BadRequest, match=r"(?i)parameter 'parse_mode' for editMessageReplyMarkup"):
        await bot.edit_message_reply_markup(
            chat_id=gus.id, message_id=sent.message_id, api_kwargs={"parse_mode": "HTML"}
        )
    async with aiohttp.ClientSession() as http:
        body = {"chat_id": gus.id, "text": "hi", "reply_markup": {"inline_keyboard": []}}
        async with http.post(f"{server.base_url}{TOKEN}/sendMessage", json=body) as resp:
            assert resp.status == 400
        body = {"offset": 0, "timeout": 0, "limt": 5}
        async with http.post(f"{server.base_url}{TOKEN}/getUpdates", json=body) as resp:
            assert (await resp.json())["description"] == (
                "Bad Request: unknown parameter 'limt' for getUpdates"
            )
    assert (gus.last.text, gus.last.labels) == ("hi", ["b0"])  # nothing changed
    assert [(e["method"], e["strict"]) for e in server.errors] == [
        ("sendMessage", True),
        ("editMessageText", True),
        ("editMessageReplyMarkup", True),
        ("sendMessage", True),
        ("getUpdates", True),
    ]
    # What Telegram takes still goes through: no markup, or one that removes a keyboard.
    await bot.send_message(gus.id, "plain", reply_markup=ReplyKeyboardRemove())
    await bot.edit_message_reply_markup(chat_id=gus.id, message_id=sent.message_id)
    assert gus.messages[-2].buttons == [] and len(server.errors) == 5
    # Every method the emulator answers says which parameters it takes.
    assert set(PARAMETERS) == {name for name, _ in server._methods.values()} | {"getUpdates"}
    server.errors.clear()  # refused on purpose
