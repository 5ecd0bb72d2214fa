"""The ``ivmtr-stream`` command line: one module per command group, ``main`` the root."""

from consumer.cli.main import main

__all__ = ["main"]
