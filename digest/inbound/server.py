"""``digest inbound``'s SMTP server: aiosmtpd on an asyncio loop until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiosmtpd.smtp import SMTP

from digest.inbound.handler import InboundHandler


def serve(
    handler: InboundHandler,
    *,
    host: str,
    port: int,
    max_bytes: int,
    hostname: str,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGTERM or SIGINT, then close the listening socket and return."""
    asyncio.run(_serve(handler, host, port, max_bytes, hostname, on_ready))


async def _serve(
    handler: InboundHandler,
    host: str,
    port: int,
    max_bytes: int,
    hostname: str,
    on_ready: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()

    def session() -> SMTP:
        # A hostname given: aiosmtpd would otherwise look up this host's FQDN per session.
        # SMTPUTF8: a report about an international address may come in such a session.
        # A message over max_bytes is answered 552 (permanent) by aiosmtpd, not read.
        return SMTP(
            handler,
            hostname=hostname,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            ident="digest inbound",
        )

    server = await loop.create_server(session, host=host, port=port)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    on_ready()
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
