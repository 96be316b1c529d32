"""`mlpcli serve`: the drawing page on a local web server."""

from __future__ import annotations

import errno
import importlib.util
from typing import Annotated, Any

import typer

from mlpcli.cli import complete
from mlpcli.cli.render import console, user_errors, warn

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listen_on(host: str, port: int) -> Any:
    """A listening socket; MlpcliError in one line when it cannot be had."""
    from mlpcli.errors import MlpcliError
    from mlpcli.serve.server import bound_socket

    try:
        return bound_socket(host, port)
    except OSError as exc:
        why = "it is in use (another server? choose --port, or --port 0 for any free one)"
        if exc.errno != errno.EADDRINUSE:
            why = exc.strerror or str(exc)
        raise MlpcliError(f"cannot listen on {host}:{port}: {why}") from None


def serve(
    checkpoint: complete.CheckpointArg = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8000,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="Also answer requests from this origin or host name, e.g. http://my.lan:8000 (repeatable; * for any).",
        ),
    ] = None,
) -> None:
    """Serve a page to draw a digit and watch the network think (needs the serve extra: FastAPI, uvicorn)."""
    from mlpcli.cli.render import resolve_checkpoint
    from mlpcli.errors import MissingExtra

    with user_errors():
        path = resolve_checkpoint(checkpoint)
        from mlpcli.serve.app import create_app

        app = create_app(path, hosts=(host,), origins=tuple(allow_origin or ()))
        if importlib.util.find_spec("uvicorn") is None:
            raise MissingExtra("serve needs FastAPI and uvicorn", "serve")
        sock = listen_on(host, port)
    run_page(app, sock, host, f"serving {path}", "the page and the API", open_browser)


def run_page(app: Any, sock: Any, host: str, what: str, exposed: str, open_browser: bool) -> None:
    """Serve app on the bound socket until Ctrl-C (exit 130) or SIGTERM (exit 0), saying where; warns when
    host is not this machine alone. what: the line's start ("serving X"); exposed: what others could use."""
    import signal

    from mlpcli.serve.server import make_server

    if host not in LOOPBACK:
        warn(f"listening on {host}: anyone who can reach this machine can use {exposed}")
    server = make_server(app)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    console.print(f"{what} at [bold]{url}[/] (Ctrl-C stops)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    stopped: list[int] = []  # uvicorn stops gracefully on both signals, then re-raises them: record, do not die
    previous = {
        s: signal.signal(s, lambda signum, frame: stopped.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    if signal.SIGINT in stopped:  # Ctrl-C: like every command, 130; SIGTERM (a service manager): a clean 0
        raise typer.Exit(130)
