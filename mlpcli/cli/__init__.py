"""The mlpcli command line: Typer commands that parse, call one service and render (the app: cli/main.py)."""
