"""A local SMTP server that keeps what it receives as ``.eml`` files.

The demo delivers through a real SMTP exchange to this sink, and the tests use
it as their SMTP server; a developer can point ``DIGEST_SMTP_URL`` at it too.
"""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


class EmlFileHandler:
    """Writes each message it receives to ``<directory>/<time>-<n>.eml``: as received,
    after the Return-Path line a final delivery adds (RFC 5321 4.4), which records the
    envelope sender."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        # The envelope sender is ASCII (digest.mail.bounces) or, in an SMTPUTF8 session,
        # UTF-8.
        return_path = b"Return-Path: <" + (envelope.mail_from or "").encode("utf-8") + b">\r\n"
        content = return_path + (envelope.original_content or b"")
        with self._lock:
            self._count += 1
            name = f"{time.time_ns()}-{self._count:06d}.eml"
        (self.directory / name).write_bytes(content)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Start with ``with SmtpSink(dir) as sink:``; ``sink.url`` is the SMTP URL."""

    def __init__(
        self,
        directory: Path,
        *,
        hostname: str = "127.0.0.1",
        port: int = 0,
        smtputf8: bool = True,
    ) -> None:
        self.directory = directory
        self.handler = EmlFileHandler(directory)
        # aiosmtpd checks readiness by connecting to its port, so it needs a real one.
        # SMTPUTF8 offered, as postfix and the large providers do, unless told otherwise.
        self.controller = Controller(
            self.handler,
            hostname=hostname,
            port=port or free_port(hostname),
            enable_SMTPUTF8=smtputf8,
        )

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://{self.controller.hostname}:{self.controller.port}"

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        return [read_eml(path) for path in self.files()]


def free_port(hostname: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((hostname, 0))
        port: int = probe.getsockname()[1]
        return port


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    if part is None:
        raise ValueError("message has no HTML part")
    content: str = part.get_content()
    return content
