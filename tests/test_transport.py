"""The bot's Bot API transport (bot/transport.py) when Telegram is slow, unreachable or
answers errors: PTB's own exceptions, within the timeouts asked."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.transport import AiohttpRequest
from tests.botapi import BotAPIServer

TOKEN = "123456:TEST"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and reads requests but never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


def _bot(base_url: str) -> Bot:
    request = AiohttpRequest(4, ssl.create_default_context())
    return Bot(TOKEN, base_url=base_url, request=request, get_updates_request=request)


async def test_a_silent_bot_api_times_out_as_ptb_says(silent_port: int) -> None:
    bot = _bot(f"http://127.0.0.1:{silent_port}/bot")
    await bot.request.initialize()  # not bot.initialize(): its getMe would wait 5 s
    try:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await asyncio.wait_for(bot.get_me(read_timeout=0.3), 5)
        # The read timeout reaches aiohttp: not PTB's 5 s default, not the wait_for above.
        assert time.monotonic() - started < 2
    finally:
        await bot.request.shutdown()


async def test_an_unreachable_bot_api_is_a_network_error() -> None:
    with socket.socket() as s:  # bound, then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    failure = await _network_error(f"http://127.0.0.1:{port}/bot")
    assert "Unknown error" not in str(failure)  # PTB's words for an exception it did not know


async def test_an_upload_to_a_server_that_never_answers_times_out(silent_port: int) -> None:
    bot = _bot(f"http://127.0.0.1:{silent_port}/bot")
    await bot.request.initialize()
    try:
        started = time.monotonic()
        big = b"\x00" * (64 * 1024 * 1024)  # far more than the socket buffers hold
        with pytest.raises(TimedOut):
            await asyncio.wait_for(
                bot.send_document(1, big, filename="x.bin", write_timeout=0.5, read_timeout=0.5),
                10,
            )
        assert time.monotonic() - started < 5
    finally:
        await bot.request.shutdown()


async def test_an_upload_longer_than_the_read_timeout_still_arrives() -> None:
    """The read timeout is for the answer: an upload taking longer than it, within its
    write timeout, succeeds (aiohttp's read timer runs while the body is still sent)."""
    received: list[int] = []

    async def read_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        got = 0
        while got < length:
            got += len(await reader.read(65536))
            await asyncio.sleep(0.05)  # ~1.3 MB/s: the 3 MB take over 2 s
        received.append(got)
        body = b'{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"}}}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(read_slowly, "127.0.0.1", 0)
    bot = _bot(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/bot")
    await bot.request.initialize()
    try:
        sent = await asyncio.wait_for(
            bot.send_document(
                1, b"\x00" * 3_000_000, filename="x.bin", read_timeout=0.5, write_timeout=20
            ),
            15,
        )
        assert sent.message_id == 1 and received and received[0] > 3_000_000
    finally:
        await bot.request.shutdown()
        server.close()
        await server.wait_closed()


async def test_the_request_works_again_after_a_shutdown(server: BotAPIServer) -> None:
    bot = _bot(server.base_url)
    for _ in range(2):
        async with bot:  # initialize, getMe, shutdown
            assert (await bot.get_me()).username == server.bot_username


async def test_a_proxy_from_the_environment_is_used(
    server: BotAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A plain HTTP proxy for one request: the request line names the whole URL."""
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", server.port)
        target = head.split(b" ", 2)[1].split(b"127.0.0.1:%d" % server.port, 1)[1]
        headers = [
            line
            for line in head.split(b"\r\n")[1:]
            if line and not line.lower().startswith(b"connection:")
        ]
        request = [b"POST " + target + b" HTTP/1.1", *headers, b"Connection: close"]
        upstream_w.write(b"\r\n".join(request) + b"\r\n\r\n" + body)
        writer.write(await upstream_r.read())
        upstream_w.close()
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    bot = _bot(server.base_url)
    try:
        await bot.request.initialize()
        response = await bot.request.post(f"{server.base_url}{TOKEN}/getMe")
        assert response["username"] == server.bot_username  # type: ignore[index]
        assert seen == [f"POST {server.base_url}{TOKEN}/getMe HTTP/1.1".encode()]
    finally:
        await bot.request.shutdown()
        proxy.close()
        await proxy.wait_closed()


async def test_errors_and_files_pass_through(server: BotAPIServer) -> None:
    ann = server.user(7001, "Ann")
    ann.type_text("/start")
    async with _bot(server.base_url) as bot:
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(999_999, "hello")
        png = _tiny_png()
        sent = await bot.send_photo(ann.id, photo=png, caption="QR")
        assert sent.photo and ann.last.photo == png
        updates = await bot.get_updates(timeout=0)
        assert [u.effective_message.text for u in updates if u.effective_message] == ["/start"]


async def test_a_call_without_files_is_one_json_document() -> None:
    """Plain calls go as JSON (bot/transport.py: cheaper to build than a form whose every
    field is JSON, then percent-encoded), buttons nested in it as Telegram reads them."""
    seen: list[tuple[str, object]] = []

    async def answer(request: web.Request) -> web.Response:
        if request.match_info["method"] == "getMe":  # Bot.initialize asks who it is
            me = {"id": 123456, "is_bot": True, "first_name": "Bot", "username": "b_bot"}
            return web.json_response({"ok": True, "result": me})
        seen.append((request.content_type, await request.json()))
        message = {"message_id": 1, "date": 0, "chat": {"id": 7001, "type": "private"}}
        return web.json_response({"ok": True, "result": {**message, "text": "Hi"}})

    api = web.Application()
    api.router.add_post(f"/bot{TOKEN}/{{method}}", answer)
    runner = web.AppRunner(api)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with _bot(f"http://127.0.0.1:{port}/bot") as bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes ✅", callback_data="y")]])
            sent = await bot.send_message(7001, "Hi & bye?", reply_markup=keyboard)
    finally:
        await runner.cleanup()
    assert sent.text == "Hi"
    assert seen == [
        (
            "application/json",
            {
                "chat_id": 7001,
                "text": "Hi & bye?",
                "reply_markup": {"inline_keyboard": [[{"text": "Yes ✅", "callback_data": "y"}]]},
            },
        )
    ]


async def _network_error(base_url: str) -> NetworkError:
    """What getMe raises there: a NetworkError and not a TimedOut, since PTB's poller
    retries a TimedOut at once, in a tight loop, and backs off after a NetworkError."""
    bot = _bot(base_url)
    await bot.request.initialize()
    try:
        with pytest.raises(NetworkError) as info:
            await asyncio.wait_for(bot.get_me(), 5)
    finally:
        await bot.request.shutdown()
    assert not isinstance(info.value, TimedOut)
    return info.value


def _tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 that no authority signed."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_a_certificate_nobody_vouches_for_is_refused(self_signed: tuple[Path, Path]) -> None:
    """TLS is verified: a Bot API behind a self-signed certificate is a NetworkError."""
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(*self_signed)
    answered: list[bool] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered.append(True)  # only reached once a handshake succeeded
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    try:
        failure = await _network_error(f"https://127.0.0.1:{port}/bot")
        assert "certificate" in str(failure).lower()
        assert not answered
    finally:
        server.close()
        await server.wait_closed()
