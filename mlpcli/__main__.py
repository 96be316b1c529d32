"""`python -m mlpcli`."""

from mlpcli.cli import main

main()
