"""A mail event: one thing a receiving system told us about one message we sent.

Events arrive from several places (a 5xx at send time, a delivery status
notification or an abuse report mailed to a VERP address, a provider's webhook);
each source turns what it received into :class:`MailEvent` values and hands them to
``record_event``, which stores them and applies the bounce policy. Nothing here
knows where an event came from beyond its ``source`` label.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EventKind(enum.StrEnum):
    # The address does not exist or never will take mail (5.x.x, or 5xx at send).
    HARD_BOUNCE = "hard_bounce"
    # A temporary refusal that ended the delivery (mailbox full, 4.x.x reported late).
    SOFT_BOUNCE = "soft_bounce"
    # The reader marked the mail as spam (ARF abuse report, provider complaint).
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class MailEvent:
    kind: EventKind
    # Where it came from: "smtp" (refused at send), "dsn", "arf", "ses", "postmark".
    source: str
    # When the receiving side says it happened (the report's date, else when received).
    occurred_at: datetime
    # The address the event is about, as the report gives it (may differ in case).
    recipient: str
    # The delivery the event is about, when known (VERP address, Message-ID lookup).
    delivery_id: int | None = None
    # The subscriber, when known without a delivery (a notice's VERP address).
    subscriber_id: int | None = None
    # RFC 3463 enhanced status code ("5.1.1") when given, else None.
    status: str | None = None
    # A short human reason: the diagnostic text, the feedback type.
    reason: str = ""
    # What was received, trimmed to a few KB: the DSN part, the JSON, the SMTP reply.
    raw: str = ""
    # The Message-ID of the original message when the report carries it.
    message_id: str | None = None


def reported_time(value: object) -> datetime | None:
    """A provider's ISO 8601 timestamp ("2016-01-27T14:59:38.237Z"), or None when it
    is missing, malformed or without a time zone (which could be any)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
