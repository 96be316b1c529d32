"""`mlpcli playground`: the lecture's neural network playground, on a local web server."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from mlpcli.cli.render import user_errors


def playground(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8001,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Pick a 2-D dataset or MNIST digits, shape a network, press play: trained live by mlpcli (serve extra)."""
    from mlpcli.cli.serve_cmd import listen_on, run_page
    from mlpcli.errors import MissingExtra

    with user_errors():
        if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
            raise MissingExtra("playground needs FastAPI and uvicorn", "serve")
        from mlpcli.serve.playground.app import create_app

        app = create_app(hosts=(host,))
        sock = listen_on(host, port)
    run_page(app, sock, host, "playground", "the playground", open_browser)
