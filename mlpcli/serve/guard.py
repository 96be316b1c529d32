"""What stands between the network and the app: which hosts and origins are answered, and how much of a body is read.

A pure ASGI middleware, so it sees every request before FastAPI does:

- Host: only the names the server was started for (127.0.0.1, localhost, [::1], the --host
  given, and what --allow-origin adds) are answered: a page on another domain that re-points
  its DNS name at 127.0.0.1 (DNS rebinding) gets 421.
- Origin: a POST (or any request that changes something) whose Origin is not the server's own
  (one of those hosts on the port it serves) or an origin --allow-origin named is refused with
  403: a multipart POST needs no preflight, so this is the only check a browser would otherwise
  skip. A request without Origin (curl, scripts) is allowed.
- WebSockets pass the same two checks (a WebSocket handshake is a GET that a browser sends from any
  page with that page's Origin, so its Origin is checked as a POST's); a refused one is closed before
  it is accepted (the client sees 403).
- The body is counted as it arrives, chunked or not, and refused with 413 at the cap (then up to
  DRAIN more bytes are read and dropped, so that the client can read the answer before the
  connection closes); a body that stops arriving for BODY_TIMEOUT seconds gets 408.

Every refusal is the API's JSON error shape: {"error": "..."}.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
BODY_TIMEOUT = 20.0  # seconds a request body may pause
DRAIN = 16 * 1024 * 1024  # bytes read and dropped after a 413, so the client sees the answer


class _Refused(BaseException):  # not an Exception: the app's own error handlers must not turn it into a 500
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def host_name(value: str) -> str:
    """'example.com:8000' -> 'example.com'; '[::1]:8000' -> '::1'; lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def send_error(send: Send, status: int, message: str) -> None:
    """Answer with the API's error shape."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.append((b"connection", b"close"))  # whatever else the client sends is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: allowed hosts and origins, a counted body with a cap and a pause timeout."""

    def __init__(self, app: Any, max_body: int, hosts: Iterable[str] = (), origins: Iterable[str] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.origins = {_origin(o) for o in origins if "://" in o}  # exact scheme://host:port
        named = {host_name(o) for o in origins if "://" not in o and o != "*"}  # a host name: any port
        self.hosts = {*LOCAL_HOSTS, *(host_name(h) for h in hosts), *named}
        self.any_port = named
        self.any_origin = "*" in set(origins)

    def _check(self, scope: Scope) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if host is not None and host_name(host) not in self.hosts and not self.any_origin:
            raise _Refused(421, f"this server answers for {', '.join(sorted(self.hosts))}, not {host[:100]!r}")
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS")
        if changes and origin is not None:
            if not self.any_origin and not self._own(origin, scope):
                raise _Refused(403, f"requests from {origin[:100]} are not allowed (see mlpcli serve --allow-origin)")

    def _own(self, origin: str, scope: Scope) -> bool:
        """The server's own page (a local name on the port it serves), or an origin the user allowed."""
        if _origin(origin) in self.origins:
            return True
        parts = urlsplit(origin)
        name = (parts.hostname or "").lower()
        server_port = (scope.get("server") or (None, None))[1]
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return name in self.any_port or (name in self.hosts and (server_port is None or port == server_port))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            try:
                self._check(scope)
            except _Refused:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check(scope)
        except _Refused as exc:
            await send_error(send, exc.status, str(exc))
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT)
            except asyncio.TimeoutError:
                raise _Refused(408, f"the request body stopped arriving for {BODY_TIMEOUT:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _Refused(413, f"the upload is larger than {self.max_body // 2**20} MiB")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _Refused as exc:
            if not started:
                await send_error(send, exc.status, str(exc))
            if exc.status == 413:
                await _drain(receive)


async def _drain(receive: Receive) -> None:
    """Read and drop up to DRAIN more body bytes (a client that is still sending can then read the 413)."""
    dropped = 0
    try:
        while dropped < DRAIN:
            message = await asyncio.wait_for(receive(), 2.0)
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body"):
                return
    except asyncio.TimeoutError:
        return


def _origin(value: str) -> str:
    """'HTTP://Host:80/' -> 'http://host:80' (scheme, host and port, the port made explicit)."""
    parts = urlsplit(value.strip().lower())
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"
