"""ASGI guard in front of the app: Host and Origin checks, token, body limit, security headers.

Pure ASGI (no BaseHTTPMiddleware) so it covers HTTP and WebSocket scopes alike and never
buffers a body it is about to refuse.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
TOKEN_COOKIE = "statemachine_ui_token"  # noqa: S105 - a cookie name
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_HOST_RE = re.compile(
    r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?))" + _PORT
)
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")


def parse_host(value: str) -> tuple[str, int | None] | None:
    """Strictly parse a Host header or an origin's netloc into (host, port): a DNS name or IPv4
    literal, or a bracketed IPv6 literal, and an optional numeric port; nothing else (no
    userinfo, spaces, paths or trailing garbage). None when it is not of that form."""
    found = _HOST_RE.fullmatch(value.lower())
    if found is None:
        return None
    port = found["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    if found["ipv6"] is not None:
        try:
            host = str(ipaddress.IPv6Address(found["ipv6"]))
        except ValueError:
            return None
    else:
        host = found["name"]
        if ".." in host:
            return None
    return host, None if port is None else int(port)


def host_name(host_header: str) -> str:
    """The host part of a Host header or netloc (`[::1]:3001` → `::1`), lower-cased; the
    whole value when it is not a well-formed host[:port]."""
    parsed = parse_host(host_header.strip())
    return parsed[0] if parsed is not None else host_header.strip().lower()


def is_loopback_name(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8 in dotted-quad form, ::1)
    only: `127.0.0.1.evil.example` is a DNS name an attacker controls, not loopback."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return address == _IPV6_LOOPBACK
    return address.is_loopback and str(address) == host


@dataclass
class Guard:
    """Settings the guard enforces; `token` None means no token is required (loopback only)."""

    bind_host: str = "127.0.0.1"
    token: str | None = None
    max_body: int = MAX_BODY_BYTES
    extra_hosts: frozenset[str] = field(default_factory=frozenset)

    def host_allowed(self, host_header: str | None) -> bool:
        """DNS-rebinding defence: the Host header must name this server: a loopback IP literal
        or `localhost`, an `extra_hosts` name, the bound address, or any well-formed host
        when bound to a wildcard address behind a token."""
        if not host_header:
            return False
        parsed = parse_host(host_header)
        if parsed is None:
            return False
        name = parsed[0]
        if is_loopback_name(name) or name in self.extra_hosts:
            return True
        bind = self.bind_host.strip().lower().strip("[]")
        if bind in WILDCARD_HOSTS:
            return self.token is not None
        with contextlib.suppress(ValueError):
            bind = str(ipaddress.ip_address(bind))
        return name == bind

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """Same-origin only: an Origin must carry the very host:port the request was sent to."""
        if origin is None:
            return True
        if host_header is None or "://" not in origin:
            return False
        scheme, netloc = origin.split("://", 1)
        if scheme.lower() not in ("http", "https"):
            return False
        ours = parse_host(host_header)
        theirs = parse_host(netloc)
        return ours is not None and theirs == ours

    def token_ok(self, headers: dict[str, str], query: str) -> bool:
        if self.token is None:
            return True
        offered: list[str] = []
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            offered.append(auth[7:].strip())
        offered += parse_qs(query).get("token", [])
        if "cookie" in headers:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:  # noqa: S110 - a malformed cookie offers no token
                pass
            else:
                if TOKEN_COOKIE in cookie:
                    offered.append(cookie[TOKEN_COOKIE].value)
        expected = self.token.encode()
        return any(hmac.compare_digest(t.encode(), expected) for t in offered)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _reject_http(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Wraps the app; refuses foreign hosts and origins, missing tokens and oversize bodies."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        query = scope.get("query_string", b"").decode("latin-1")
        problem: tuple[int, str] | None = None
        if not self.guard.host_allowed(host):
            problem = (403, "host not allowed")
        elif not self.guard.origin_allowed(headers.get("origin"), host) and (
            scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
        ):
            problem = (403, "cross-origin request refused")
        elif not self.guard.token_ok(headers, query):
            problem = (401, "missing or wrong token")
        if scope["type"] == "websocket":
            if problem is not None:
                await receive()  # the websocket.connect message
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": problem[0],
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                body = json.dumps({"error": problem[1]}).encode()
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await self.app(scope, receive, send)
            return
        if problem is not None:
            await _reject_http(send, *problem)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.guard.max_body):
            await _reject_http(send, 413, f"request body larger than {self.guard.max_body} bytes")
            return
        await self._http(scope, receive, send, headers, query)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: str
    ) -> None:
        seen = 0
        refused = False
        set_cookie = (
            self.guard.token is not None
            and "token" in parse_qs(query)
            and scope.get("method") == "GET"
            and not scope["path"].startswith("/api/")
        )

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.guard.max_body:
                    # A chunked body without Content-Length: answer now, starve the app.
                    refused = True
                    limit = self.guard.max_body
                    await _reject_http(send, 413, f"request body larger than {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def secured_send(message: Message) -> None:
            if refused:
                return
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if set_cookie and self.guard.token is not None:
                    cookie = f"{TOKEN_COOKIE}={self.guard.token}; Path=/; HttpOnly; SameSite=Strict"
                    extra.append((b"set-cookie", cookie.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, limited_receive, secured_send)
