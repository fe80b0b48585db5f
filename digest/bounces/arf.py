"""Abuse and complaint reports (ARF, RFC 5965) read into mail events.

A feedback report is a ``multipart/report; report-type=feedback-report`` whose second
part, ``message/feedback-report``, is one block of fields (``Feedback-Type``,
``User-Agent``, ``Version`` required; ``Original-Rcpt-To``, ``Arrival-Date`` and others
optional), and whose third part is the reported message or its header.

``Feedback-Type`` (RFC 5965 section 7.3, RFC 6591, RFC 6650) says what the report is:
``abuse`` (the reader pressed "this is spam"), ``fraud`` and ``virus`` (the provider
judged the message so) and ``other`` are complaints: a provider telling us one of its
users does not want our mail, and continuing to send is what costs a sending
reputation. ``not-spam`` (the reader took it out of the spam folder) and
``auth-failure`` (a DMARC/DKIM failure report, about our signing, not the reader) are
not; neither is a type we do not know, which yields no event rather than a guess.

Which delivery a report is about is decided by the caller (the VERP address it was sent
to, or the returned message's Return-Path or signed links), as for DSNs.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser

from digest.bounces.events import EventKind, MailEvent
from digest.bounces.reports import (
    OriginalHeaders,
    address_of,
    date_of,
    field,
    original_headers,
    part_of_type,
    report_type,
    text_of,
    trimmed,
)

SOURCE = "arf"
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})


@dataclass(frozen=True)
class FeedbackReport:
    feedback_type: str
    user_agent: str | None
    recipient: str | None
    arrival: datetime | None
    original: OriginalHeaders | None
    raw: str

    @property
    def kind(self) -> EventKind | None:
        return EventKind.COMPLAINT if self.feedback_type in COMPLAINT_TYPES else None


def read_arf(message: Message) -> FeedbackReport | None:
    """The feedback report in ``message``; None when it is not one."""
    if report_type(message) != "feedback-report":
        return None
    part = part_of_type(message, "message/feedback-report")
    if part is None:
        return None
    # The email package reads a message/* part as a message: its header is the fields.
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        block = payload[0]
        text = "\n".join(f"{name}: {value}" for name, value in block.items())
    else:
        text = text_of(part)
        block = HeaderParser(policy=email.policy.default).parsestr(text)
    feedback_type = (field(block, "Feedback-Type") or "").lower()
    if not feedback_type:
        return None
    original = original_headers(message)
    recipient = address_of(field(block, "Original-Rcpt-To")) or address_of(
        original.to if original else None
    )
    return FeedbackReport(
        feedback_type=feedback_type,
        user_agent=field(block, "User-Agent"),
        recipient=recipient,
        # Received-Date is what drafts before RFC 5965 called it; some loops still do.
        arrival=date_of(field(block, "Arrival-Date") or field(block, "Received-Date")),
        original=original,
        raw=trimmed(text),
    )


def arf_events(
    message: Message,
    *,
    received_at: datetime,
    delivery_id: int | None = None,
    subscriber_id: int | None = None,
) -> list[MailEvent]:
    """The complaint in ``message``, as a one-event list; empty when it is none."""
    report = read_arf(message)
    if report is None or report.kind is None:
        return []
    reason = f"feedback-type {report.feedback_type}"
    if report.user_agent:
        reason += f" from {report.user_agent}"
    return [
        MailEvent(
            kind=report.kind,
            source=SOURCE,
            occurred_at=report.arrival or date_of(field(message, "Date")) or received_at,
            # Providers redact the address (Microsoft's JMRP does): the delivery names
            # the reader then, and the recipient is only for the record.
            recipient=report.recipient or "",
            delivery_id=delivery_id,
            subscriber_id=subscriber_id,
            reason=reason[:500],
            raw=report.raw,
            message_id=report.original.message_id if report.original else None,
        )
    ]
