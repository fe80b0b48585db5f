"""A real SMTP server (aiosmtpd) that refuses, drops and records on cue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from digest.processes import wait_for

# How long a held DATA waits for the others before the test fails on it.
HOLD_TIMEOUT = 10.0


@dataclass
class Accepted:
    recipient: str
    # (address, port) of the client's end: one per SMTP session.
    peer: tuple[str, int]


@dataclass
class ScriptedHandler:
    """Accepts every message, except for recipients whose local part says
    otherwise: ``gone…`` gets 550 and ``busy…`` 421 at RCPT, ``drop…`` loses the
    connection at DATA.

    With ``hold`` set, each DATA waits until ``hold`` messages are in DATA at
    once, so a test sees that many in flight or fails (451 after
    ``HOLD_TIMEOUT``) instead of counting on timing.
    """

    hold: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    most_in_data: int = 0
    sessions: list[Any] = field(default_factory=list)
    _in_data: int = 0
    _together: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if server not in self.sessions:
            self.sessions.append(server)
        if address.startswith("gone"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "421 4.7.0 Too busy, closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        [recipient] = envelope.rcpt_tos
        if recipient.startswith("drop"):
            server.transport.close()
            return "451 never read"
        self._in_data += 1
        self.most_in_data = max(self.most_in_data, self._in_data)
        try:
            if self.hold:
                if self._in_data >= self.hold:
                    self._together.set()
                try:
                    await asyncio.wait_for(self._together.wait(), HOLD_TIMEOUT)
                except TimeoutError:
                    return "451 4.3.0 fewer messages in flight than expected"
        finally:
            self._in_data -= 1
        self.accepted.append(Accepted(recipient, session.peer))
        return "250 OK"


@dataclass
class ScriptedServer:
    controller: Controller
    handler: ScriptedHandler

    @property
    def url(self) -> str:
        return f"smtp://{self.controller.hostname}:{self.controller.port}"

    def accepted(self) -> list[str]:
        return sorted(a.recipient for a in self.handler.accepted)

    def peers(self) -> set[tuple[str, int]]:
        return {a.peer for a in self.handler.accepted}

    def close_sessions(self) -> None:
        """Close every open session from the server's side, as an idle timeout or
        a restart would, and wait until they are closed."""
        sessions = list(self.handler.sessions)

        def close() -> None:
            for server in sessions:
                if server.transport is not None:
                    server.transport.close()

        self.controller.loop.call_soon_threadsafe(close)
        assert wait_for(
            lambda: all(s.transport is None for s in sessions), timeout=10, interval=0.01
        )
