"""Reported events matched to the digest they are about, then recorded.

A provider that rewrites the Message-ID (SES) or sends from its own envelope
(Postmark) still reports, when set up to, the Message-ID we sent. A digest's is
``<digest.<edition>.<subscriber id>@<domain>>`` (``digest_message_id``), so the
delivery is found through the ledger's unique (subscriber, edition) index, and
believed only when that row was sent with exactly this Message-ID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.events import MailEvent
from digest.bounces.policy import BouncePolicy
from digest.bounces.recording import RecordedEvent, record_event
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


def record_reported(
    session: Session, events: Iterable[MailEvent], *, now: datetime, policy: BouncePolicy
) -> list[RecordedEvent | None]:
    """``record_event`` for each, with its delivery found by Message-ID when the
    report did not name it otherwise; None for an event about nobody we know."""
    results = []
    for event in events:
        if event.delivery_id is None and event.subscriber_id is None and event.message_id:
            delivery_id = delivery_for_message_id(session, event.message_id)
            if delivery_id is not None:
                event = replace(event, delivery_id=delivery_id)
        results.append(record_event(session, event, now=now, policy=policy))
    return results
