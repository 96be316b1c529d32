"""`mlpcli playground`: the lecture's neural network playground, on a local web server."""

from __future__ import annotations

import importlib.util
import signal
from typing import Annotated

import typer

from mlpcli.cli.render import console, user_errors, warn

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def playground(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8001,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Pick a 2-D dataset or MNIST digits, shape a network, press play: trained live by mlpcli (serve extra)."""
    from mlpcli.cli.serve_cmd import _bind
    from mlpcli.errors import MissingExtra

    with user_errors():
        if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
            raise MissingExtra("playground needs FastAPI and uvicorn", "serve")
        from mlpcli.serve.playground.app import create_app
        from mlpcli.serve.server import make_server

        app = create_app(hosts=(host,))
        sock = _bind(host, port)
    if host not in LOOPBACK:
        warn(f"listening on {host}: anyone who can reach this machine can use the playground")
    server = make_server(app)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{sock.getsockname()[1]}/"
    console.print(f"playground at [bold]{url}[/] (Ctrl-C stops)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    stopped: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: stopped.append(signum)) for s in handled}
    try:
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    if signal.SIGINT in stopped:
        raise typer.Exit(130)
