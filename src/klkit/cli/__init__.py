"""The ``klkit`` command line."""

from klkit.cli.app import app, main

__all__ = ["app", "main"]
