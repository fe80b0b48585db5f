"""Handing messages to an SMTP server (aiosmtplib).

Send errors are classified: a permanent refusal (5xx) is not retried, anything
transient (4xx, timeouts, lost connections) is, by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from digest.mail.message import WIRE_POLICY, envelope_sender
from digest.mail.sender import SendError


@dataclass(frozen=True)
class SmtpConfig:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    timeout: float

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://``."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP URL must look like smtp://host:port, got {url!r}")
        use_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            timeout=timeout,
        )


class SmtpConnection:
    """One SMTP session reused for a batch of messages; reconnects after a failure."""

    def __init__(self, config: SmtpConfig, loop: asyncio.AbstractEventLoop) -> None:
        self._config = config
        self._loop = loop
        self._client: aiosmtplib.SMTP | None = None

    def _connect(self) -> aiosmtplib.SMTP:
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.hostname,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.use_tls,
            timeout=config.timeout,
        )
        self._loop.run_until_complete(client.connect())
        return client

    def send(self, message: EmailMessage) -> None:
        try:
            if self._client is None or not self._client.is_connected:
                self._client = self._connect()
            # Flattened here, not by aiosmtplib, whose 78-column policy would
            # encode the List-Unsubscribe URLs (see MESSAGE_POLICY).
            self._loop.run_until_complete(
                self._client.sendmail(
                    envelope_sender(message),
                    [a.addr_spec for a in message["To"].addresses],
                    message.as_bytes(policy=WIRE_POLICY),
                )
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise SendError(
                "; ".join(f"{r.code} {r.message}" for r in exc.recipients),
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            self._drop()
            raise SendError(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._drop()
            raise SendError(f"SMTP unavailable: {exc}", permanent=False) from exc

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            with suppress(aiosmtplib.SMTPException, OSError):
                self._loop.run_until_complete(self._client.quit())
        self._drop()


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
