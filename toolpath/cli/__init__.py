"""The ``toolpath`` command: one module per verb, registered on one Typer app in :mod:`.app`."""

from toolpath.cli.app import app, main

__all__ = ["app", "main"]
