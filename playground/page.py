"""The playground's web page and its small JSON API, served by the emulator's own aiohttp app.

The browser never talks to the bot: it shows the emulator's chats (the same objects the bot
writes to over the Bot API) and asks the emulator to type, tap or open a link as one of the
simulated people.  All state lives here on the server, so two tabs show the same phones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from playground.emulator import BotAPIServer, Msg, SimUser, start_command

STATIC_DIR = Path(__file__).resolve().parent / "static"
HEARTBEAT_S = 15.0
# Several API calls usually answer one tap (answer, edit, send): one frame for the burst.
COALESCE_S = 0.02
USER_TEXT_MAX = 4096
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
# The page loads only its own files; the bot's text is never markup (see playground.js).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Hint:
    """Shown in a phone's empty chat and under its owner's name: the demo invite link,
    the date of birth to type when asked, and the email others ask for access with."""

    link: str
    name: str
    dob: str
    email: str | None = None


@dataclass
class Phone:
    key: str  # "practitioner", "parent", "partner": stable names for the page and the tests
    user_id: int
    first_name: str  # what Telegram tells the bot
    owner: str  # shown above the phone, e.g. "Sam Rivera"
    role: str  # e.g. "parent"
    hint: Hint | None = None


def is_loopback_ip(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str | None) -> bool:
    """A Host or Origin host naming this computer; anything else may be DNS rebinding."""
    if not host:
        return False
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    return name is not None and (name in _LOOPBACK_NAMES or is_loopback_ip(name))


@web.middleware
async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer only this computer, by peer address and by Host: the chats hold sign-in links."""
    if not is_loopback_ip(request.remote) or not is_loopback_host(request.host):
        return web.Response(
            status=403, text="The playground answers only on this computer (127.0.0.1).\n"
        )
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("Origin")
        # Another site open in the same browser must not be able to type into the phones.
        if origin is not None and not is_loopback_host(urlsplit(origin).netloc):
            return web.Response(status=403, text="Cross-site request refused.\n")
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")


def _image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class PlaygroundPage:
    """Routes for the page, its state (GET, server-sent events) and the people's actions."""

    def __init__(self, server: BotAPIServer, phones: list[Phone], timezone: str = "UTC") -> None:
        self.server = server
        self.phones = {phone.key: phone for phone in phones}
        self.timezone = timezone  # the practice's: message times as the bot tells them
        # Telegram shows "/start" for an opened link, not the secret payload the bot receives.
        self._opened_links: set[tuple[int, int]] = set()
        for phone in phones:
            server.user(phone.user_id, phone.first_name)

    def install(self, app: web.Application) -> None:
        """Add to the emulator's aiohttp application (BotAPIServer.start(setup=...))."""
        app.middlewares.append(loopback_only)
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/phones/{phone}/send", self._send)
        app.router.add_post("/api/phones/{phone}/tap", self._tap)
        app.router.add_post("/api/phones/{phone}/open", self._open)
        app.router.add_get("/api/phones/{phone}/photo/{message_id:\\d+}", self._photo)

    # -- state
    def state(self) -> dict[str, Any]:
        server = self.server
        names = {p.user_id: p.owner for p in self.phones.values()}
        return {
            "bot": {"username": server.bot_username, "name": server.bot_name},
            "timezone": self.timezone,
            "phones": [self._phone_json(p) for p in self.phones.values()],
            "violations": [
                {
                    "method": e["method"],
                    "code": e["error_code"],
                    "description": e["description"],
                    "chat": names.get(e["chat_id"]) if e.get("chat_id") else None,
                    "time": e.get("time"),
                }
                for e in server.errors
            ],
        }

    def _user(self, phone: Phone) -> SimUser:
        user = self.server.known_user(phone.user_id)
        assert user is not None, "created in __init__"
        return user

    def _phone_json(self, phone: Phone) -> dict[str, Any]:
        user = self._user(phone)
        return {
            "key": phone.key,
            "owner": phone.owner,
            "role": phone.role,
            "hint": None
            if phone.hint is None
            else {
                "link": phone.hint.link,
                "name": phone.hint.name,
                "dob": phone.hint.dob,
                "email": phone.hint.email,
            },
            "commands": self.server.commands_for(user),
            "keyboard": user.keyboard,
            "alerts": [{"text": text, "show_alert": alert} for text, alert in user.alerts],
            "messages": [self._message_json(phone, m) for m in user.messages],
        }

    def _message_json(self, phone: Phone, m: Msg) -> dict[str, Any]:
        entities = [
            {k: e[k] for k in ("type", "offset", "length", "url") if k in e} for e in m.entities
        ]
        text = m.content
        if (phone.user_id, m.message_id) in self._opened_links:
            text, entities = "/start", []
        data: dict[str, Any] = {
            "id": m.message_id,
            "from_bot": m.from_bot,
            "kind": m.kind,
            "text": text,
            "entities": entities,
            "edited": m.edited,
            "date": m.edit_date or m.date,
            "buttons": [
                [{"text": b.text, "kind": b.kind, "url": b.url} for b in row] for row in m.buttons
            ],
        }
        if m.kind == "photo" and m.photo:
            # The edit count in the address makes a replaced photo load afresh.
            data["photo"] = f"/api/phones/{phone.key}/photo/{m.message_id}?v={m.edited}"
        if m.kind == "document":
            data["document"] = m.document_name or "file"
        return data

    # -- handlers
    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole state whenever it changed (it is small)."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        sent = ""
        try:
            while not self.server.stopping:
                revision = self.server.revision
                body = json.dumps(self.state(), separators=(",", ":"))
                if body != sent:
                    await response.write(f"data: {body}\n\n".encode())
                    sent = body
                if await self.server.wait_change(revision, HEARTBEAT_S) == revision:
                    await response.write(b": still here\n\n")  # proxies and idle timeouts
                else:
                    await asyncio.sleep(COALESCE_S)
        except (ConnectionResetError, RuntimeError):
            pass  # the tab was closed
        return response

    def _phone(self, request: web.Request) -> Phone:
        phone = self.phones.get(request.match_info["phone"])
        if phone is None:
            raise web.HTTPNotFound(text="no such phone")
        return phone

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        # JSON only: a cross-site form cannot send it without a CORS preflight we never answer.
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="malformed JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _send(self, request: web.Request) -> web.Response:
        phone = self._phone(request)
        text = (await self._body(request)).get("text")
        if not isinstance(text, str) or not text.strip():
            raise web.HTTPBadRequest(text="type something first")
        if len(text) > USER_TEXT_MAX:
            raise web.HTTPBadRequest(text=f"Telegram messages are at most {USER_TEXT_MAX} long")
        self._user(phone).type_text(text.strip())
        return web.json_response({"ok": True})

    async def _tap(self, request: web.Request) -> web.Response:
        phone = self._phone(request)
        body = await self._body(request)
        try:
            message_id, row, col = (int(body[k]) for k in ("message_id", "row", "col"))
        except (KeyError, TypeError, ValueError):
            raise web.HTTPBadRequest(text="message_id, row and col are numbers") from None
        user = self._user(phone)
        msg = user.message(message_id)
        if msg is None or not msg.from_bot:
            raise web.HTTPGone(text="that message is gone")
        try:
            button = msg.buttons[row][col]
        except IndexError:
            raise web.HTTPConflict(text="that button is no longer there") from None
        if button.callback_data is None:
            raise web.HTTPBadRequest(text=f"{button.text!r} is a {button.kind} button")
        user.press(msg, button.callback_data)
        return web.json_response({"ok": True})

    async def _open(self, request: web.Request) -> web.Response:
        phone = self._phone(request)
        url = (await self._body(request)).get("url")
        if not isinstance(url, str):
            raise web.HTTPBadRequest(text="url is a string")
        try:
            text = start_command(url, self.server.bot_username)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        user = self._user(phone)
        user.type_text(text)
        self._opened_links.add((user.id, user.messages[-1].message_id))
        return web.json_response({"ok": True})

    async def _photo(self, request: web.Request) -> web.Response:
        msg = self._user(self._phone(request)).message(int(request.match_info["message_id"]))
        kind = _image_type(msg.photo) if msg is not None and msg.photo else None
        if msg is None or msg.photo is None or kind is None:
            raise web.HTTPNotFound(text="no such photo")
        return web.Response(body=msg.photo, content_type=kind)
