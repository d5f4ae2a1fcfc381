"""The ``labelfix`` command line: a thin layer over the library."""

from labelfix.cli.main import app, main

__all__ = ["app", "main"]
