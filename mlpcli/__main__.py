"""`python -m mlpcli`."""

from mlpcli.cli.main import main

main()
