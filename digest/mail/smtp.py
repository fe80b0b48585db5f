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
from collections.abc import Iterable, Iterator
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from digest.mail.outgoing import OutgoingMessage
from digest.mail.pool import SendPool
from digest.mail.sender import ResultCallback, SendError

log = logging.getLogger(__name__)

# The reply that says the server is closing the session (RFC 5321 4.2.3).
SERVICE_CLOSING = 421


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

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, message: OutgoingMessage) -> None:
        """Hand ``message`` over, or raise :class:`SendError`."""
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
                f"{exc.code} {exc.message}", permanent=exc.code >= 500, code=exc.code
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise SendError(f"SMTP unavailable: {exc}", permanent=False) from exc
        except ValueError as exc:
            # aiosmtplib refuses an address it cannot quote before sending anything.
            raise SendError(f"not sendable: {exc}", permanent=True) from exc
        except Exception:
            self._drop()
            raise

    async def _transaction(self, message: OutgoingMessage) -> None:
        reused = self._client is not None and self._client.is_connected
        client = self._client if reused and self._client else await self._connect()
        options = [f"SIZE={len(message.data)}"] if client.supports_extension("size") else []
        try:
            await client.mail(message.sender, options=options)
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
            await client.mail(message.sender, options=options)
        await client.rcpt(message.recipient)
        await client.data(message.data)

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


class SmtpConnection:
    """One session for synchronous callers (notices, the CLI), on a private loop."""

    def __init__(self, config: SmtpConfig, loop: asyncio.AbstractEventLoop) -> None:
        self._session = SmtpSession(config)
        self._loop = loop

    def send(self, message: OutgoingMessage) -> None:
        self._loop.run_until_complete(self._session.send(message))

    def close(self) -> None:
        self._loop.run_until_complete(self._session.close())


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @contextmanager
    def connection(self) -> Iterator[SmtpConnection]:
        # Workers and the CLI are synchronous; a private loop keeps aiosmtplib's
        # connection alive across the messages of one batch.
        loop = asyncio.new_event_loop()
        connection = SmtpConnection(self.config, loop)
        try:
            yield connection
        finally:
            connection.close()
            loop.close()

    def pool(self) -> SendPool:
        """A pool of ``config.connections`` sessions at ``config.rate``, for a
        running event loop (``async with sender.pool() as pool``)."""
        config = self.config
        return SendPool(
            lambda: SmtpSession(config), connections=config.connections, rate=config.rate
        )

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        """:meth:`digest.mail.sender.Sender.send_many` through a pool, on a private
        event loop in this thread; ``on_result`` runs in it, between two SMTP
        replies, so a slow one holds up the messages in flight, never loses them."""

        async def send() -> None:
            async with self.pool() as pool, aclosing(pool.send_all(messages)) as results:
                async for message, error in results:
                    on_result(message, error)

        asyncio.run(send())
