"""Reported events matched to the digest they are about.

A provider that rewrites the Message-ID (SES) or sends from its own envelope
(Postmark) still reports, when set up to, the Message-ID we sent. A digest's is
``<digest.<edition>.<subscriber id>@<domain>>`` (``digest_message_id``), so the
delivery is found through the ledger's unique (subscriber, edition) index, and
believed only when that row was sent with exactly this Message-ID.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.events import MailEvent
from digest.delivery.models import Delivery

# The inverse of digest.delivery.compose.digest_message_id.
_DIGEST_MESSAGE_ID = re.compile(r"<digest\.([0-9A-Za-z-]+)\.([0-9]{1,19})@[^<>@\s]+>")


def delivery_for_message_id(session: Session, message_id: str) -> int | None:
    """The delivery sent with this Message-ID; None for any other (a notice's, SES's own)."""
    value = message_id.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    match = _DIGEST_MESSAGE_ID.fullmatch(value)
    if match is None:
        return None
    found: int | None = session.scalar(
        select(Delivery.id).where(
            Delivery.subscriber_id == int(match.group(2)),
            Delivery.edition == match.group(1),
            Delivery.message_id == value,
        )
    )
    return found


def with_delivery(session: Session, event: MailEvent) -> MailEvent:
    """``event`` with its delivery found by Message-ID, when the report named neither
    the delivery nor the reader otherwise."""
    if event.delivery_id is not None or event.subscriber_id is not None or not event.message_id:
        return event
    delivery_id = delivery_for_message_id(session, event.message_id)
    return event if delivery_id is None else replace(event, delivery_id=delivery_id)
