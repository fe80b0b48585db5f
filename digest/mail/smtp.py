"""Handing messages to an SMTP server (aiosmtplib).

Send errors are classified: a permanent refusal (5xx) is not retried, anything
transient (4xx, timeouts, lost connections, a server that cannot be reached or
logged in to) is, by the caller.

:class:`SmtpSession` is one SMTP session, opened on first use and again after it
is lost. :class:`SmtpSender` offers it to synchronous callers one message at a
time (:meth:`SmtpSender.connection`) and, for bulk sending, a pool of sessions
with several messages in flight (:meth:`SmtpSender.pool`, or
:meth:`SmtpSender.send_many` from synchronous code).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from digest.mail.outgoing import OutgoingMessage
from digest.mail.pool import SendPool
from digest.mail.sender import ResultCallback, SendError, SendObserver

log = logging.getLogger(__name__)

# Replies (RFC 5321 4.2.3): done, go ahead with the message, closing the session.
COMPLETED = 250
WILL_FORWARD = 251
START_INPUT = 354
SERVICE_CLOSING = 421
LINE_ENDS = re.compile(rb"\r\n|\n|\r")
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


class NeedsSmtpUtf8(ValueError):
    """An address beyond ASCII, for a server that does not offer SMTPUTF8."""


def envelope(address: str, *, utf8: bool = False) -> bytes:
    """An address as MAIL FROM and RCPT TO take it, or ValueError: ASCII only unless
    the session is SMTPUTF8 (RFC 6531), no control characters (command injection)."""
    if not (utf8 or address.isascii()):
        raise NeedsSmtpUtf8(
            f"{address} has characters beyond ASCII and the SMTP server does not offer "
            "SMTPUTF8 (RFC 6531), which sending to it needs"
        )
    encoded = address.encode("utf-8")
    if CONTROL.search(encoded):
        raise ValueError(f"control character in address {address!r}")
    return b"<" + encoded + b">"


def wire_data(data: bytes) -> bytes:
    """``data`` as DATA sends it: CRLF line ends, a leading dot doubled (RFC 5321
    4.5.2), the end-of-data line appended."""
    if data.count(b"\n") != data.count(b"\r\n"):
        # Bare line feeds: a message not flattened by outgoing(); rare, so the
        # slow way.
        data = LINE_ENDS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


@dataclass(frozen=True)
class SmtpConfig:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    timeout: float
    # Sessions a pool keeps open to this server, one message in flight on each.
    connections: int = 1
    # Messages per second handed to this server by one pool; None: no limit.
    rate: float | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = 30.0,
        connections: int = 1,
        rate: float | None = None,
    ) -> SmtpConfig:
        """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://``,
        optionally with ``?connections=N&rate=R`` (messages per second), which win
        over the ``connections`` and ``rate`` given here."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP URL must look like smtp://host:port, got {url!r}")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - {"connections", "rate"})
        if unknown:
            raise ValueError(
                f"SMTP URL options are connections and rate, got {', '.join(unknown)} in {url!r}"
            )
        try:
            if "connections" in options:
                connections = int(options["connections"])
            if "rate" in options:
                rate = float(options["rate"])
        except ValueError:
            raise ValueError(f"SMTP URL options must be numbers, got {parts.query!r}") from None
        if connections < 1:
            raise ValueError(f"SMTP connections must be at least 1, got {connections}")
        if rate is not None and not rate > 0:
            raise ValueError(f"SMTP rate must be a positive number of messages/s, got {rate}")
        use_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            timeout=timeout,
            connections=connections,
            rate=rate,
        )


class SmtpSession:
    """One SMTP session, connected on first use and reconnected after it is lost;
    one message at a time (SMTP sends a session's messages in turn)."""

    def __init__(self, config: SmtpConfig, observer: SendObserver | None = None) -> None:
        self._config = config
        self._observer = observer
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, message: OutgoingMessage) -> None:
        """Hand ``message`` over, or raise :class:`SendError`."""
        if self._observer is None:
            await self._send(message)
            return
        started = time.perf_counter()
        try:
            await self._send(message)
        except SendError as exc:
            self._observer.refused(exc, time.perf_counter() - started)
            raise
        self._observer.accepted(time.perf_counter() - started)

    async def _send(self, message: OutgoingMessage) -> None:
        try:
            await self._transaction(message)
        except asyncio.CancelledError:
            # Cut off mid-exchange: the session's state is unknown.
            self._drop()
            raise
        except SendError:
            raise
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_after(exc)
            raise SendError(
                f"{exc.code} {exc.message}",
                permanent=exc.code >= 500,
                code=exc.code,
                command=_refused_command(exc),
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise SendError(f"SMTP unavailable: {exc}", permanent=False) from exc
        except ValueError as exc:
            # An address that cannot be sent as it is (non-ASCII, control
            # characters), refused before anything is sent.
            raise SendError(f"not sendable: {exc}", permanent=True) from exc
        except Exception:
            self._drop()
            raise

    async def _transaction(self, message: OutgoingMessage) -> None:
        reused = self._client is not None and self._client.is_connected
        client = self._client if reused and self._client else await self._connect()
        # An address beyond ASCII (RFC 6532 headers come only with one) needs SMTPUTF8,
        # and the server says whether it has it only once connected.
        utf8 = not (message.sender.isascii() and message.recipient.isascii())
        utf8 = utf8 and client.supports_extension("smtputf8")
        # Both addresses checked before a command is sent, so a bad one never leaves
        # a transaction half open.
        sender = envelope(message.sender, utf8=utf8)
        recipient = envelope(message.recipient, utf8=utf8)
        options = [b"SIZE=%d" % len(message.data)] if client.supports_extension("size") else []
        if utf8:
            options.append(b"SMTPUTF8")
        try:
            await self._mail(client, sender, options)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
            stale = isinstance(exc, aiosmtplib.SMTPServerDisconnected) or (
                exc.code == SERVICE_CLOSING
            )
            if not (reused and stale):
                raise
            # The server closed the session while it sat idle (its timeout, a
            # restart) and says so only now. Nothing of this message was
            # accepted yet, so a new session sends it without any risk of a copy.
            log.info("SMTP session to %s closed by the server; reconnecting", client.hostname)
            self._drop()
            client = await self._connect()
            await self._mail(client, sender, options)
        await self._rcpt(client, recipient)
        await self._data(client, message.data)

    # MAIL and RCPT by hand, not client.mail() and client.rcpt(), which parse
    # each address again (a fifth of the sender's time per message): the envelope
    # holds bare addresses already.

    @staticmethod
    async def _mail(client: aiosmtplib.SMTP, sender: bytes, options: list[bytes]) -> None:
        reply = await client.execute_command(b"MAIL", b"FROM:" + sender, *options)
        if reply.code != COMPLETED:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender.decode())

    @staticmethod
    async def _rcpt(client: aiosmtplib.SMTP, recipient: bytes) -> None:
        reply = await client.execute_command(b"RCPT", b"TO:" + recipient)
        if reply.code not in (COMPLETED, WILL_FORWARD):
            raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient.decode())

    @staticmethod
    async def _data(client: aiosmtplib.SMTP, data: bytes) -> None:
        # Not client.data(): it runs two regular expressions over the whole
        # message (line ends, dot-stuffing), 0.4 ms for a 27 KB digest, more than
        # the rest of the exchange costs the sender (benchmarks/smtp.py).
        start = await client.execute_command(b"DATA")
        if start.code != START_INPUT:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        # Nothing else uses this session meanwhile (one message at a time), so the
        # reply is this write's.
        protocol.write(wire_data(data))
        reply = await protocol.read_response(timeout=client.timeout)
        if reply.code != COMPLETED:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

    async def _connect(self) -> aiosmtplib.SMTP:
        self._drop()
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.hostname,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.use_tls,
            timeout=config.timeout,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except aiosmtplib.SMTPException as exc:
            client.close()
            # Greeting, STARTTLS or login refused: the server's or our
            # configuration's problem, never this message's, so never permanent.
            code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
            raise SendError(f"SMTP unavailable: {exc}", permanent=False, code=code) from exc
        self._client = client
        return client

    async def _reset_after(self, refusal: aiosmtplib.SMTPResponseException) -> None:
        """After a refused command the session stays usable once its transaction is
        reset, unless the server is closing it."""
        client = self._client
        if client is None or not client.is_connected or refusal.code == SERVICE_CLOSING:
            self._drop()
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            with suppress(aiosmtplib.SMTPException, OSError):
                await self._client.quit()
        self._drop()


def _refused_command(refusal: aiosmtplib.SMTPResponseException) -> str | None:
    """Which command of the transaction the reply refused (the refusals are raised as
    these types by ``_mail``, ``_rcpt`` and ``_data``)."""
    if isinstance(refusal, aiosmtplib.SMTPSenderRefused):
        return "MAIL"
    if isinstance(refusal, aiosmtplib.SMTPRecipientRefused):
        return "RCPT"
    if isinstance(refusal, aiosmtplib.SMTPDataError):
        return "DATA"
    return None


class SmtpConnection:
    """One session for synchronous callers (notices, the CLI), on a private loop."""

    def __init__(
        self,
        config: SmtpConfig,
        loop: asyncio.AbstractEventLoop,
        observer: SendObserver | None = None,
    ) -> None:
        self._session = SmtpSession(config, observer)
        self._loop = loop

    def send(self, message: OutgoingMessage) -> None:
        self._loop.run_until_complete(self._session.send(message))

    def close(self) -> None:
        self._loop.run_until_complete(self._session.close())


class SmtpSender:
    def __init__(self, config: SmtpConfig, observer: SendObserver | None = None) -> None:
        self.config = config
        self.observer = observer

    @contextmanager
    def connection(self) -> Iterator[SmtpConnection]:
        # Workers and the CLI are synchronous; a private loop keeps aiosmtplib's
        # connection alive across the messages of one batch.
        loop = asyncio.new_event_loop()
        connection = SmtpConnection(self.config, loop, self.observer)
        try:
            yield connection
        finally:
            connection.close()
            loop.close()

    def pool(self) -> SendPool:
        """A pool of ``config.connections`` sessions at ``config.rate``, for a
        running event loop (``async with sender.pool() as pool``)."""
        config, observer = self.config, self.observer
        return SendPool(
            lambda: SmtpSession(config, observer), connections=config.connections, rate=config.rate
        )

    @property
    def max_in_flight(self) -> int:
        return self.config.connections

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        """:meth:`digest.mail.sender.Sender.send_many` through a pool, on a private
        event loop in this thread; ``on_result`` runs in it, between two SMTP
        replies, so a slow one holds up the messages in flight, never loses them."""

        async def send() -> None:
            async with self.pool() as pool, aclosing(pool.send_all(messages)) as results:
                async for message, error in results:
                    on_result(message, error)

        asyncio.run(send())
