"""What stands between the network and the app: which hosts and origins are answered, and how much of a body is read.

A pure ASGI middleware, so it sees every request before FastAPI does:

- Host: only the names the server was started for (127.0.0.1, localhost, [::1], the --host
  given, and what --allow-origin adds) are answered: a page on another domain that re-points
  its DNS name at 127.0.0.1 (DNS rebinding) gets 421.
- Origin: a POST (or any request that changes something) whose Origin is not one of those
  hosts is refused with 403; a multipart POST needs no preflight, so this is the only check a
  browser would otherwise skip. A request without Origin (curl, scripts) is allowed.
- The body is counted as it arrives, chunked or not, and refused with 413 at the cap; a body
  that stops arriving for BODY_TIMEOUT seconds gets 408.

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
        extra = {host_name(urlsplit(o).netloc or o) for o in origins}
        self.hosts = {*LOCAL_HOSTS, *(host_name(h) for h in hosts), *extra}
        self.any_origin = "*" in set(origins)

    def _check(self, scope: Scope) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if host is not None and host_name(host) not in self.hosts and not self.any_origin:
            raise _Refused(421, f"this server answers for {', '.join(sorted(self.hosts))}, not {host[:100]!r}")
        origin = headers.get("origin")
        if scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            if host_name(urlsplit(origin).netloc) not in self.hosts and not self.any_origin:
                raise _Refused(403, f"requests from {origin[:100]} are not allowed (see mlpcli serve --allow-origin)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
