"""Delivery status notifications (RFC 3464) read into mail events.

A DSN is a ``multipart/report; report-type=delivery-status`` (RFC 6522) whose second
part, ``message/delivery-status``, is one block of per-message fields followed by one
block per recipient (the email package parses it into those header blocks). For each
recipient, ``Action`` says what happened and ``Status`` (RFC 3463) how:

- ``failed`` with ``5.x.x``: the address will never take mail, a hard bounce;
- ``failed`` with ``4.x.x``: the MTA retried a temporary failure until it gave up
  (RFC 3464's own first example, "Cannot send message for 5 days"), a soft bounce;
- ``delayed``: the MTA is still trying and will send another DSN if it gives up. A
  delay is not a bounce, and counting it as one would bounce a reader whose server was
  down for an hour; it yields no event. ``delivered``, ``relayed`` and ``expanded``
  are not failures either.

Which delivery a DSN is about is not read from it: the DSN was sent to the message's
VERP envelope sender, which the caller verified (:mod:`digest.mail.bounces`) and passes
in. The returned message's Message-ID and the recipient's address travel with the
event for the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from digest.bounces.events import EventKind, MailEvent
from digest.bounces.reports import (
    OriginalHeaders,
    address_of,
    date_of,
    field,
    original_headers,
    part_of_type,
    report_type,
    trimmed,
    typed_value,
)

SOURCE = "dsn"
_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class RecipientReport:
    """One per-recipient block of a DSN."""

    recipient: str | None
    action: str
    # "5.1.1"; None when the field is missing or not an RFC 3463 code.
    status: str | None
    diagnostic: str
    last_attempt: datetime | None

    @property
    def kind(self) -> EventKind | None:
        if self.action != "failed":
            # delayed, delivered, relayed, expanded: not a bounce (see the module).
            return None
        if self.status is not None and self.status.startswith("5."):
            return EventKind.HARD_BOUNCE
        # 4.x.x after the MTA gave up, or a failure that names no status: a soft bounce,
        # which the policy counts; a wrong guess then costs one count, not the reader.
        return EventKind.SOFT_BOUNCE


@dataclass(frozen=True)
class DeliveryStatusReport:
    recipients: list[RecipientReport]
    original: OriginalHeaders | None
    # Gmail names the original in the per-message block (X-Original-Message-ID).
    original_message_id: str | None
    date: datetime | None
    raw: str


def read_dsn(message: Message) -> DeliveryStatusReport | None:
    """The DSN in ``message``; None when it is not one (or has no status part)."""
    if report_type(message) != "delivery-status":
        return None
    status_part = part_of_type(message, "message/delivery-status")
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    if not isinstance(per_message, Message):
        return None
    recipients = [
        _recipient(block)
        for block in per_recipient
        if isinstance(block, Message) and field(block, "Action")
    ]
    original = original_headers(message)
    x_original = field(per_message, "X-Original-Message-ID")
    return DeliveryStatusReport(
        recipients=recipients,
        original=original,
        original_message_id=(original.message_id if original else None) or x_original,
        date=date_of(field(message, "Date")),
        raw=trimmed(_as_text(status_part)),
    )


def dsn_events(
    message: Message,
    *,
    received_at: datetime,
    delivery_id: int | None = None,
    subscriber_id: int | None = None,
) -> list[MailEvent]:
    """One event per failed recipient of the DSN in ``message`` (none for delays)."""
    report = read_dsn(message)
    if report is None:
        return []
    events = []
    for block in report.recipients:
        kind = block.kind
        if kind is None or block.recipient is None:
            continue
        events.append(
            MailEvent(
                kind=kind,
                source=SOURCE,
                occurred_at=block.last_attempt or report.date or received_at,
                recipient=block.recipient,
                delivery_id=delivery_id,
                subscriber_id=subscriber_id,
                status=block.status,
                reason=block.diagnostic,
                raw=report.raw,
                message_id=report.original_message_id,
            )
        )
    return events


def _recipient(block: Message) -> RecipientReport:
    # The address we sent to is the Original-Recipient (the ORCPT we gave, or the MTA's
    # record of it); Final-Recipient may be where a forward led.
    recipient = address_of(field(block, "Original-Recipient")) or address_of(
        field(block, "Final-Recipient")
    )
    status_text = field(block, "Status") or ""
    match = _STATUS.match(status_text)
    status = ".".join(match.groups()) if match else None
    diagnostic = typed_value(field(block, "Diagnostic-Code")) or status_text
    return RecipientReport(
        recipient=recipient,
        action=(field(block, "Action") or "").lower(),
        status=status,
        diagnostic=diagnostic[:500],
        last_attempt=date_of(field(block, "Last-Attempt-Date")),
    )


def _as_text(part: Message) -> str:
    try:
        return part.as_string()
    except Exception:
        # A part the generator cannot write back (bad header bytes): keep what it says.
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items())
            for block in part.get_payload()
            if isinstance(block, Message)
        )
