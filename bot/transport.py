"""How the bot talks to the Bot API: PTB's BaseRequest on aiohttp.

PTB's HTTPXRequest costs the bot several times this one's CPU per Bot API call when calls
overlap: for every request httpcore's pool walks its connections and asks each whether it
has expired (httpx issue #3215; benchmarks/README.md). PTB's own aiohttp
request lives in ptbcontrib, which is not on PyPI; httpx-aiohttp's transport was tried
and turned connection failures into timeouts (PTB's poller then retries at once, in a
tight loop), dropped the write timeout and ignored proxy variables.

What PTB's BaseRequest expects of do_request: the status and body of any HTTP answer (it
turns error codes into TelegramError itself), TimedOut when a timeout ran out and
NetworkError for any other failure to get an answer.
"""

from __future__ import annotations

import io
import json
import ssl
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput  # BaseRequest.do_request's own annotation

# PTB's HTTPXRequest defaults, so that nothing about waiting changes with the transport.
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 1.0
MEDIA_WRITE_TIMEOUT = 20.0


class AiohttpRequest(BaseRequest):
    """Bot API calls over one aiohttp session per initialize(), `connections` at most."""

    __slots__ = (
        "_connections",
        "_env_proxies",
        "_headers",
        "_json_headers",
        "_proxies",
        "_session",
        "_tls",
    )

    def __init__(self, connections: int, tls: ssl.SSLContext) -> None:
        self._connections = connections
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None
        self._env_proxies: dict[str, str] = {}
        self._proxies: dict[str, str | None] = {}  # "scheme://host:port" -> proxy URL
        self._headers = {"User-Agent": self.USER_AGENT}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}

    @property
    def read_timeout(self) -> float:
        return READ_TIMEOUT

    async def initialize(self) -> None:
        # A new session each time, so an Application can be initialised again after a
        # shutdown (aiohttp's sessions cannot be reopened).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._tls)
            )
            # HTTP(S)_PROXY and NO_PROXY, read once as httpx does: aiohttp's trust_env reads
            # them, and ~/.netrc, again for every request, at a cost to every call
            # (benchmarks/README.md).
            self._env_proxies = urllib.request.getproxies()
            self._proxies = {}

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("This AiohttpRequest is not initialized")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, READ_TIMEOUT)
        write = _given(write_timeout, MEDIA_WRITE_TIMEOUT if files else WRITE_TIMEOUT)
        connect = _given(connect_timeout, CONNECT_TIMEOUT)
        pool = _given(pool_timeout, POOL_TIMEOUT)
        timeout = aiohttp.ClientTimeout(
            # aiohttp has no write timeout: a deadline for the whole call bounds a body that
            # the server stops reading, and leaves each phase its own budget.
            total=_sum(pool, connect, write, read),
            connect=_sum(pool, connect),  # waiting for a free connection, then opening it
            sock_connect=connect,
            # aiohttp's read timer starts while the body is still being sent; with httpx the
            # read timeout starts after it. A file's upload gets its write budget on top.
            sock_read=_sum(write, read) if files else read,
        )
        body = _body(request_data)
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=self._json_headers if isinstance(body, bytes) else self._headers,
                timeout=timeout,
                proxy=self._proxy_for(url),
            ) as response:
                return response.status, await response.read()
        # aiohttp's timeouts are both TimeoutError and ClientError: they go first.
        except TimeoutError as exc:
            raise TimedOut(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            # Refused, reset, DNS, a certificate refused: NetworkError, after which PTB's
            # poller backs off (it retries a TimedOut at once).
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy_for(self, url: str) -> str | None:
        scheme, _, origin = url.split("/", 3)[:3]  # "https:", "", "api.telegram.org"
        key = f"{scheme}//{origin}"
        if key not in self._proxies:
            proxy = self._env_proxies.get(scheme.rstrip(":"))
            host = urllib.parse.urlsplit(key).hostname or ""
            # As urllib's ProxyHandler decides (NO_PROXY, or the system's exceptions); once
            # per origin, as the answer is kept.
            if proxy and urllib.request.proxy_bypass(host):
                proxy = None
            self._proxies[key] = proxy
        return self._proxies[key]


def _given(value: ODVInput[float], default: float) -> float | None:
    """The timeout passed (None: no limit), else `default`: a DefaultValue (PTB's
    BaseRequest.DEFAULT_NONE) means none was, as HTTPXRequest reads it."""
    if value is None or isinstance(value, int | float):
        return value
    return default


def _sum(*parts: float | None) -> float | None:
    """None (no limit) when any part has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def _body(request_data: RequestData | None) -> aiohttp.FormData | bytes | None:
    """A call without files is one JSON document, encoded once (a form, as HTTPXRequest
    sends, JSON-encodes each field and then percent-encodes it byte by byte, a cost to
    every update: benchmarks/README.md). With files, multipart as HTTPXRequest sends it."""
    if request_data is None:
        return None
    if not request_data.contains_files:
        parameters = request_data.parameters
        if not parameters:
            return None
        # PTB's json_payload would encode each field on its own first, then the whole.
        # ASCII with escapes: a lone surrogate in a user's text cannot fail to encode.
        return json.dumps(parameters, separators=(",", ":")).encode()
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        # Streamed in chunks: aiohttp would send bytes in one write, blocking the loop.
        stream = io.BytesIO(content) if isinstance(content, bytes) else content
        form.add_field(name, stream, filename=filename, content_type=mime)
    return form
