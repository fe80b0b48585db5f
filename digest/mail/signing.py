"""A sender that DKIM-signs every message on its way to another sender.

Signing sits here, at the last step before the wire, so every email type (digests on
the fast path, notices, whatever comes next) is signed the same way and nothing that
composes mail needs to know about keys. Messages stay unsigned in memory until a
session is free for them: ``send_many`` reads its messages lazily, and so does this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from digest.mail.dkim import DkimError, DkimSigner
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import MailConnection, ResultCallback, Sender, SendError

log = logging.getLogger(__name__)


class SigningSender:
    def __init__(self, sender: Sender, signer: DkimSigner) -> None:
        self._sender = sender
        self._signer = signer

    @property
    def max_in_flight(self) -> int:
        return self._sender.max_in_flight

    def sign(self, message: OutgoingMessage) -> OutgoingMessage:
        try:
            return replace(message, data=self._signer.sign(message.data))
        except DkimError as error:
            # Never sent unsigned: a receiver applying DMARC would junk it, and
            # one such message says the others may be forged too.
            raise SendError(f"cannot DKIM-sign this message: {error}", permanent=True) from None

    @contextmanager
    def connection(self) -> Iterator[MailConnection]:
        with self._sender.connection() as connection:
            yield _SigningConnection(connection, self)

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        def signed() -> Iterator[OutgoingMessage]:
            for message in messages:
                try:
                    yield self.sign(message)
                except SendError as error:
                    log.error("not sent: %s (%s)", error, message.message_id)
                    on_result(message, error)

        self._sender.send_many(signed(), on_result)


class _SigningConnection:
    def __init__(self, connection: MailConnection, sender: SigningSender) -> None:
        self._connection = connection
        self._sender = sender

    def send(self, message: OutgoingMessage) -> None:
        self._connection.send(self._sender.sign(message))


def signing(sender: Sender, signer: DkimSigner | None) -> Sender:
    """``sender`` itself when there is no key, else a sender signing with it."""
    return sender if signer is None else SigningSender(sender, signer)
