"""The aiosmtpd handler of ``digest inbound``: who may be mailed, and the replies.

RCPT takes only our addresses (:mod:`digest.inbound.recipients`) and answers 550 to
the rest. DATA hands the message to the domain in a worker thread (the database is
synchronous) and answers 250 whatever it made of it: a sender that gets a 4xx for a
message we cannot read sends it again and again, and one that gets a 5xx may bounce
the bounce. Only an unreachable database answers 451, so that the sender keeps the
report and retries once we can record it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc

from digest.inbound.processing import Outcome, Received
from digest.inbound.recipients import InboundAddresses, Recipient
from digest.metrics.instruments import InboundMetrics

log = logging.getLogger(__name__)

# The database could not be reached or answered too late: try again later.
_OUTAGE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)

Receive = Callable[[bytes, Sequence[Recipient]], Received]


class InboundHandler:
    def __init__(
        self, addresses: InboundAddresses, receive: Receive, metrics: InboundMetrics
    ) -> None:
        self.addresses = addresses
        self.receive = receive
        self.metrics = metrics

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.addresses.classify(address) is None:
            self.metrics.refused_recipient()
            log.info("refused RCPT %s from %s", address, getattr(session, "peer", None))
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipients = [
            r for r in (self.addresses.classify(a) for a in envelope.rcpt_tos) if r is not None
        ]
        raw: bytes = envelope.original_content or b""
        try:
            received = await asyncio.to_thread(self.receive, raw, recipients)
        except _OUTAGE:
            log.exception("database unavailable: inbound message left with the sender")
            return "451 4.3.0 Temporarily unable to record this message, try again later"
        except Exception:
            # A message that breaks the parser is dropped, never refused: see the module.
            log.exception("inbound message dropped: it could not be processed")
            received = Received(Outcome.DROPPED, "could not be processed")
        self.metrics.received(received.outcome.value)
        log.info(
            "inbound message to %s: %s (%s)",
            ", ".join(envelope.rcpt_tos),
            received.outcome.value,
            received.detail,
        )
        return "250 2.0.0 OK"
