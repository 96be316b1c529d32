"""The package's version, in a module of its own: deep modules import it without importing the package's API."""

__version__ = "0.1.0"
