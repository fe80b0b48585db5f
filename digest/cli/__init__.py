"""The ``digest`` command line."""

from digest.cli.commands import main

__all__ = ["main"]
