"""A sender that DKIM-signs every message on its way to another sender.

Signing sits here, at the last step before the wire, so every email type (digests on
the fast path, notices, whatever comes next) is signed the same way and nothing that
composes mail needs to know about keys. ``send_many`` reads its messages lazily, and
so does this, but for the few (SIGN_AHEAD) it signs before a session asks for them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

from digest.mail.dkim import DkimError, DkimSigner
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import MailConnection, ResultCallback, Sender, SendError

log = logging.getLogger(__name__)
# Messages signed ahead of the sessions asking for them. OpenSSL's RSA step (most of
# signing's time) releases the GIL, so a thread signs while this one composes the
# next: the second core of a single send-due process.
SIGN_AHEAD = 2


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
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dkim") as pool:
                ahead: deque[tuple[OutgoingMessage, Future[OutgoingMessage]]] = deque()
                try:
                    for message in messages:
                        ahead.append((message, pool.submit(self.sign, message)))
                        if len(ahead) > SIGN_AHEAD:
                            yield from self._settled(*ahead.popleft(), on_result)
                except GeneratorExit:
                    raise
                except Exception:
                    # Composing the next one failed: those composed before it still
                    # go out (or fail) before the error reaches the caller.
                    while ahead:
                        yield from self._settled(*ahead.popleft(), on_result)
                    raise
                while ahead:
                    yield from self._settled(*ahead.popleft(), on_result)

        self._sender.send_many(signed(), on_result)

    @staticmethod
    def _settled(
        message: OutgoingMessage, signing: Future[OutgoingMessage], on_result: ResultCallback
    ) -> Iterator[OutgoingMessage]:
        try:
            yield signing.result()
        except SendError as error:
            log.error("not sent: %s (%s)", error, message.message_id)
            on_result(message, error)


class _SigningConnection:
    def __init__(self, connection: MailConnection, sender: SigningSender) -> None:
        self._connection = connection
        self._sender = sender

    def send(self, message: OutgoingMessage) -> None:
        self._connection.send(self._sender.sign(message))


def signing(sender: Sender, signer: DkimSigner | None) -> Sender:
    """``sender`` itself when there is no key, else a sender signing with it."""
    return sender if signer is None else SigningSender(sender, signer)
