"""Postmark's bounce and spam complaint webhooks as mail events, and the check of
the HTTP basic auth credentials Postmark is set up to send with them.

Postmark posts one JSON record per event, ``RecordType`` saying which:

- ``Bounce``: by ``Type``. ``HardBounce`` and ``BadEmailAddress`` are hard
  bounces; ``SoftBounce``, ``Transient`` (delayed) and ``DnsError`` (a temporary DNS
  error) soft ones. The rest are not about the address taking mail: auto-replies,
  subscribe/unsubscribe/address-change requests, challenge and virus
  notifications, Postmark's own states (``ManuallyDeactivated``, ``Unconfirmed``,
  ``Blocked``, ``SMTPApiError``, ``DMARCPolicy``, ``TemplateRenderingFailed``,
  ``InboundError``), ``Unknown`` and ``OpenRelayTest``: no event.
- ``SpamComplaint``: a complaint.
- ``Delivery``, ``Open``, ``Click``, ``SubscriptionChange``: no event.

Postmark's ``MessageID`` is its own id for the message (it sends with a Message-ID
of its own), so the reader is found by address; the id keeps a retried webhook
from counting twice.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from digest.bounces.events import EventKind, MailEvent, reported_time

SOURCE = "postmark"
RAW_LIMIT = 4000
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
BOUNCE_KINDS: dict[str, EventKind] = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "BadEmailAddress": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "DnsError": EventKind.SOFT_BOUNCE,
    # Postmark files complaints under bounces in its API; a record of that type is one.
    "SpamComplaint": EventKind.COMPLAINT,
}


class NotAPostmarkRecord(ValueError):
    pass


def postmark_events(record: Mapping[str, Any], *, received_at: datetime) -> list[MailEvent]:
    """The event a Postmark webhook record reports, if it reports one."""
    record_type = record.get("RecordType")
    if record_type == "Bounce":
        kind = BOUNCE_KINDS.get(str(record.get("Type", "")))
    elif record_type == "SpamComplaint":
        kind = EventKind.COMPLAINT
    elif isinstance(record_type, str):
        return []
    else:
        raise NotAPostmarkRecord("no RecordType")
    if kind is None:
        return []
    email = record.get("Email")
    if not isinstance(email, str) or "@" not in email:
        raise NotAPostmarkRecord("no Email")
    details = str(record.get("Details") or "")
    status = _STATUS.search(details)
    message_id = record.get("MessageID")
    return [
        MailEvent(
            kind=kind,
            source=SOURCE,
            occurred_at=reported_time(record.get("BouncedAt")) or received_at,
            recipient=email,
            status=status.group(1) if status else None,
            reason=(details or str(record.get("Description") or record.get("Type", "")))[:500],
            # The bounce dump (Content) can be the whole message: left out.
            raw=json.dumps({k: v for k, v in record.items() if k != "Content"}, ensure_ascii=False)[
                :RAW_LIMIT
            ],
            message_id=str(message_id) if message_id else None,
        )
    ]


def credentials_match(authorization: str | None, *, user: str, password: str) -> bool:
    """Whether an ``Authorization: Basic …`` header carries these credentials,
    compared in constant time (a timing difference would spell the password out)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        return False
    expected = f"{user}:{password}".encode()
    return hmac.compare_digest(given, expected)
