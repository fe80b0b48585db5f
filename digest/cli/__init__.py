"""The ``digest`` command line: one module per command group, each command one unit of work."""

from digest.cli.main import main

__all__ = ["main"]
