"""Running the app: uvicorn with limits, timeouts and bounded logs, on a socket the caller bound.

- MAX_CONNECTIONS connections and tasks at once; beyond, 503 (uvicorn's limit_concurrency).
- A connection must send its request headers within HEADER_TIMEOUT seconds (a half-sent
  request is closed: slow clients cannot hold the server's connections); an idle kept-alive
  connection is closed after TIMEOUT_KEEP_ALIVE seconds; a body that pauses for longer than
  guard.BODY_TIMEOUT is answered 408.
- The same log message (e.g. "too many open files" while accepting) is written at most once
  every LOG_INTERVAL seconds.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

MAX_CONNECTIONS = 64
HEADER_TIMEOUT = 10.0
TIMEOUT_KEEP_ALIVE = 5
LOG_INTERVAL = 10.0
MAX_WS_MESSAGE = 64 * 1024  # bytes of one WebSocket message from a client


class _OncePerInterval(logging.Filter):
    """Lets each distinct message through at most once per LOG_INTERVAL seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.msg}"
        now = time.monotonic()
        if now - self.last.get(key, -LOG_INTERVAL) < LOG_INTERVAL:
            return False
        if len(self.last) > 1000:
            self.last.clear()
        self.last[key] = now
        return True


def _protocol() -> type:
    """uvicorn's h11 protocol, closing connections that do not send their headers in time."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimedH11(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._headers_timer = self.loop.call_later(HEADER_TIMEOUT, self._headers_late)

        def _headers_late(self) -> None:
            # a connection upgraded to a WebSocket belongs to the WebSocket's protocol now: never close it here
            upgraded = self.transport.get_protocol() is not self
            if self.cycle is None and not upgraded and not self.transport.is_closing():
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self._headers_timer is not None:
                self._headers_timer.cancel()
                self._headers_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._headers_timer is not None:
                self._headers_timer.cancel()
            super().connection_lost(exc)

    return HeaderTimedH11


def make_server(app: Any) -> Any:
    """A uvicorn.Server for app with mlpcli's limits (run it with .run(sockets=[sock]))."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=_protocol(),
        log_level="error",
        access_log=False,
        timeout_keep_alive=TIMEOUT_KEEP_ALIVE,
        limit_concurrency=MAX_CONNECTIONS,
        ws_max_size=MAX_WS_MESSAGE,
    )
    once = _OncePerInterval()
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(once)
    return uvicorn.Server(config)


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port); OSError when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock
