"""The counters a process keeps: messages accepted, SMTP latency, error codes, mail events.

Process-wide, as Prometheus counters are, and built on first use rather than at
import: ``digest worker --metrics-port`` must set ``PROMETHEUS_MULTIPROC_DIR``
before ``prometheus_client`` is first imported, so that each prefork child writes
its counts where the exporter in the main process reads them.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

from digest.bounces.events import MailEvent
from digest.bounces.recording import RecordedEvent
from digest.mail.sender import SendError

# From a local sink's milliseconds to a provider's slow second, and timeouts.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class MailMetrics:
    """A :class:`digest.mail.sender.SendObserver` counting into Prometheus."""

    def __init__(self) -> None:
        self.messages = Counter(
            "digest_messages_sent", "Messages the SMTP server accepted (rate() gives messages/s)."
        )
        self.latency = Histogram(
            "digest_smtp_send_seconds",
            "Time to hand one message to the SMTP server, from MAIL FROM to the reply "
            "to its data (a connect included when one was needed), accepted or not.",
            buckets=LATENCY_BUCKETS,
        )
        self.errors = Counter(
            "digest_smtp_errors",
            "Messages the SMTP server did not accept, by reply code ('none': no reply, "
            "such as a timeout or a refused connection).",
            ["code", "permanent"],
        )

    def accepted(self, seconds: float) -> None:
        self.messages.inc()
        self.latency.observe(seconds)

    def refused(self, error: SendError, seconds: float) -> None:
        self.latency.observe(seconds)
        code = "none" if error.code is None else str(error.code)
        self.errors.labels(code=code, permanent=str(error.permanent).lower()).inc()


@cache
def mail_metrics() -> MailMetrics:
    """This process's counters (a metric registers once per process)."""
    return MailMetrics()


class InboundMetrics:
    """What ``digest inbound`` received: messages by outcome, recipients refused."""

    OUTCOMES = ("bounce", "complaint", "unsubscribe", "dropped")

    def __init__(self) -> None:
        self.messages = Counter(
            "digest_inbound_messages",
            "Messages digest inbound accepted, by what they did: bounce, complaint, "
            "unsubscribe, or dropped (not a report, names nothing we signed, unreadable).",
            ["outcome"],
        )
        # Every outcome from 0, so a rate() has a series before the first message.
        for outcome in self.OUTCOMES:
            self.messages.labels(outcome=outcome)
        self.refused = Counter(
            "digest_inbound_refused_recipients",
            "RCPT TO addresses refused with 550: not one of ours (spam, relay attempts, "
            "forged VERP addresses).",
        )

    def received(self, outcome: str) -> None:
        self.messages.labels(outcome=outcome).inc()

    def refused_recipient(self) -> None:
        self.refused.inc()


@cache
def inbound_metrics() -> InboundMetrics:
    return InboundMetrics()


class MailEventMetrics:
    """Bounces and complaints as they are recorded, whichever process received them."""

    def __init__(self) -> None:
        self.events = Counter(
            "digest_mail_events",
            "Mail events (bounces, complaints) received, by kind, source and what "
            "recording them did ('dropped': about no reader we know).",
            ["kind", "source", "result"],
        )

    def recorded(self, event: MailEvent, result: RecordedEvent | None) -> None:
        outcome = "dropped" if result is None else result.action.value
        self.events.labels(kind=event.kind.value, source=event.source, result=outcome).inc()


@cache
def mail_event_metrics() -> MailEventMetrics:
    return MailEventMetrics()
