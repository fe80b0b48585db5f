"""What the pipeline sends mail through; SMTP (``digest.mail.smtp``) is one such sender.

Delivery and notices only ever see these protocols, so a test, a console
sender or another transport can stand in for SMTP without touching them.
Messages arrive ready for the wire (:class:`~digest.mail.outgoing.OutgoingMessage`):
a sender does no MIME work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from digest.mail.outgoing import OutgoingMessage


class SendError(Exception):
    """A message was not accepted: ``permanent`` (5xx) is never retried.

    ``code`` is the server's reply code when there was a reply (None for a
    timeout, a refused or lost connection); ``str(error)`` holds the code and the
    server's text. ``command`` is the SMTP command the reply refused ("MAIL",
    "RCPT" or "DATA"; None when no command was refused): a refused RCPT is about
    the recipient's address, a refused MAIL about us (see digest.bounces.smtp).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.command = command


# Called once per message as its outcome is known: None when it was accepted.
ResultCallback = Callable[[OutgoingMessage, SendError | None], None]


class SendObserver(Protocol):
    """Told of every SMTP exchange: what the metrics count (messages, latency, error codes)."""

    def accepted(self, seconds: float) -> None: ...

    def refused(self, error: SendError, seconds: float) -> None: ...


class MailConnection(Protocol):
    def send(self, message: OutgoingMessage) -> None:
        """Hand one message over, or raise :class:`SendError`."""


class Sender(Protocol):
    @property
    def max_in_flight(self) -> int:
        """How many messages :meth:`send_many` may have handed over and not yet reported."""

    def connection(self) -> AbstractContextManager[MailConnection]:
        """One session for a few messages sent one by one, closed when the block ends."""

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        """Hand every message over, several at once, calling ``on_result`` in this
        thread as each outcome arrives (so the caller can record outcomes in small
        groups while other messages are in flight).

        ``messages`` is read lazily, one message per free session, so it may be a
        generator that composes as it goes. One message's failure reaches
        ``on_result`` and never stops the others. An exception from ``messages`` is
        raised once the messages already in flight have reported; one from
        ``on_result`` stops the sending at once (the messages in flight are
        abandoned, their outcome unknown).
        """
