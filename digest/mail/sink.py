"""A local SMTP server that keeps what it receives as ``.eml`` files.

The demo delivers through a real SMTP exchange to this sink, and the tests use
it as their SMTP server; a developer can point ``DIGEST_SMTP_URL`` at it too.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope


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


class ClosingController(Controller):
    """aiosmtpd's ``Controller``, but ``stop()`` closes the sessions clients left open.

    aiosmtpd stops by cancelling its loop's tasks; a connection accepted meanwhile (a
    worker reconnecting while a fault test stops its sink) keeps a transport nobody
    closes, and the garbage collector closes it later, with a ResourceWarning in
    whatever test happens to be running. This one stops listening first, then closes
    every session a client still holds, then stops as aiosmtpd does.
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        session: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self._sessions.add(session)
        return session

    def stop(self, no_assert: bool = False) -> None:
        if self.loop.is_running():
            closed = threading.Event()

            def close_sessions() -> None:
                if self.server is not None:
                    self.server.close()
                for session in list(self._sessions):
                    if session.transport is not None:
                        session.transport.close()
                # After the transports' own close callbacks, which were queued first.
                self.loop.call_soon(closed.set)

            self.loop.call_soon_threadsafe(close_sessions)
            closed.wait(timeout=10)
        super().stop(no_assert)


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
        self.controller = ClosingController(
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
