"""What the pipeline sends mail through; SMTP (``digest.mail.smtp``) is one such sender.

Delivery and notices only ever see these protocols, so a test, a console
sender or another transport can stand in for SMTP without touching them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from email.message import EmailMessage
from typing import Protocol


class SendError(Exception):
    """A message was not accepted: ``permanent`` (5xx) is never retried."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailConnection(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message over, or raise :class:`SendError`."""


class Sender(Protocol):
    def connection(self) -> AbstractContextManager[MailConnection]:
        """One session for a batch of messages, closed when the block ends."""
