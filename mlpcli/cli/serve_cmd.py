"""`mlpcli serve`: the drawing page on a local web server."""

from __future__ import annotations

from typing import Annotated

import typer

from mlpcli.cli import complete
from mlpcli.cli.render import console, note, user_errors, warn

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    checkpoint: complete.CheckpointArg = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8000,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
) -> None:
    """Serve a page to draw a digit and watch the network think (needs the serve extra: FastAPI, uvicorn)."""
    from mlpcli.cli.render import resolve_checkpoint
    from mlpcli.errors import MissingExtra

    with user_errors():
        path = resolve_checkpoint(checkpoint)
        from mlpcli.serve.app import create_app

        app = create_app(path)
        try:
            import uvicorn
        except ImportError:
            raise MissingExtra("serve needs FastAPI and uvicorn", "serve") from None
    if host not in LOOPBACK:
        warn(f"listening on {host}: anyone who can reach this machine can use the page and the API")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if port:
        console.print(f"serving {path} at [bold]{url}[/] (Ctrl-C stops)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)
    else:
        note("serving on a free port (Ctrl-C stops)")
    server.run()
    if server.should_exit:  # ended by Ctrl-C (or SIGTERM): like every command, 130
        raise typer.Exit(130)
