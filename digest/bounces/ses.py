"""Amazon SES bounce and complaint notifications (the Message of an SNS notification)
as mail events.

SES publishes the same JSON two ways: as identity notifications (``notificationType``)
and through a configuration set's event publishing (``eventType``). Either way:

- ``Bounce``: ``bounce.bounceType`` ``Permanent`` is a hard bounce; ``Transient`` is
  a soft one (SES reports it once it has stopped retrying). ``Undetermined`` (the
  receiver's report said too little) counts as soft: one unclear report does not
  end a subscription, repeated ones do, through the policy's soft limit.
- ``Complaint``: a complaint for each of ``complaint.complainedRecipients``, unless
  the feedback type is ``not-spam`` (a receiver taking back an earlier report).
- Anything else (``Delivery``, ``Send``, ``Open``, ``DeliveryDelay``…): no event.

Which message it was about, best first: the envelope sender SES sent from
(``mail.source``) when it is one of our signed VERP addresses; else the original
Message-ID, which SES keeps only in ``mail.headers``/``mail.commonHeaders`` when the
identity includes original headers (``mail.messageId`` is SES's own id, used only
to tell a retried notification from a new one); else the recipient's address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from digest.bounces.events import EventKind, MailEvent, reported_time
from digest.mail.bounces import BounceAddresses, BounceKind

SOURCE = "ses"
# What a stored event keeps of the notification.
RAW_LIMIT = 4000
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_BOUNCE_KINDS = {
    "Permanent": EventKind.HARD_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "Undetermined": EventKind.SOFT_BOUNCE,
}


class NotAnSesNotification(ValueError):
    pass


def ses_events(
    notification: Mapping[str, Any], *, addresses: BounceAddresses, received_at: datetime
) -> list[MailEvent]:
    """The events an SES notification reports; [] for the kinds that report none."""
    kind = notification.get("notificationType", notification.get("eventType"))
    if not isinstance(kind, str):
        raise NotAnSesNotification("no notificationType or eventType")
    if kind not in ("Bounce", "Complaint"):
        # Delivery, Send, Open… and SES's own "AmazonSnsSubscriptionSucceeded".
        return []
    mail = notification.get("mail")
    if not isinstance(mail, dict):
        raise NotAnSesNotification("no mail object")
    if kind == "Bounce":
        return _bounces(notification, mail, addresses, received_at)
    return _complaints(notification, mail, addresses, received_at)


def original_message_id(mail: Mapping[str, Any]) -> str | None:
    """The Message-ID we sent, when SES included the original headers."""
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers:
            if (
                isinstance(header, dict)
                and str(header.get("name", "")).lower() == "message-id"
                and isinstance(header.get("value"), str)
            ):
                return str(header["value"]).strip()
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and isinstance(common.get("messageId"), str):
        return str(common["messageId"]).strip()
    return None


def _bounces(
    notification: Mapping[str, Any],
    mail: Mapping[str, Any],
    addresses: BounceAddresses,
    received_at: datetime,
) -> list[MailEvent]:
    bounce = _object(notification, "bounce")
    bounce_type = str(bounce.get("bounceType", ""))
    kind = _BOUNCE_KINDS.get(bounce_type)
    if kind is None:
        raise NotAnSesNotification(f"unknown bounceType {bounce_type[:40]!r}")
    recipients = _recipients(bounce, "bouncedRecipients")
    label = f"{bounce_type}/{bounce.get('bounceSubType', '')}".rstrip("/")
    events = []
    for recipient in recipients:
        status = recipient.get("status")
        events.append(
            _event(
                # A recipient the DSN says is only delayed has not failed for good.
                EventKind.SOFT_BOUNCE if recipient.get("action") == "delayed" else kind,
                recipient,
                bounce,
                mail,
                addresses,
                received_at,
                alone=len(recipients) == 1,
                status=status if isinstance(status, str) and _STATUS.fullmatch(status) else None,
                reason=str(recipient.get("diagnosticCode") or label),
            )
        )
    return events


def _complaints(
    notification: Mapping[str, Any],
    mail: Mapping[str, Any],
    addresses: BounceAddresses,
    received_at: datetime,
) -> list[MailEvent]:
    complaint = _object(notification, "complaint")
    feedback = complaint.get("complaintFeedbackType")
    if feedback == "not-spam":
        return []
    recipients = _recipients(complaint, "complainedRecipients")
    return [
        _event(
            EventKind.COMPLAINT,
            recipient,
            complaint,
            mail,
            addresses,
            received_at,
            alone=len(recipients) == 1,
            status=None,
            reason=str(feedback or "complaint"),
        )
        for recipient in recipients
    ]


def _event(
    kind: EventKind,
    recipient: Mapping[str, Any],
    report: Mapping[str, Any],
    mail: Mapping[str, Any],
    addresses: BounceAddresses,
    received_at: datetime,
    *,
    alone: bool,
    status: str | None,
    reason: str,
) -> MailEvent:
    delivery_id = subscriber_id = None
    # Our messages have one recipient each: a report naming several is not ours to
    # pin on one delivery, and each recipient is found by address instead.
    if alone:
        target = addresses.read(parseaddr(str(mail.get("source", "")))[1])
        if target is not None and target.kind == BounceKind.DELIVERY:
            delivery_id = target.id
        elif target is not None:
            subscriber_id = target.id
    ses_id = mail.get("messageId")
    return MailEvent(
        kind=kind,
        source=SOURCE,
        occurred_at=reported_time(report.get("timestamp")) or received_at,
        recipient=str(recipient["emailAddress"]),
        delivery_id=delivery_id,
        subscriber_id=subscriber_id,
        status=status,
        reason=reason[:500],
        raw=json.dumps({"report": report, "mail": mail}, ensure_ascii=False)[:RAW_LIMIT],
        message_id=original_message_id(mail) or (str(ses_id) if ses_id else None),
    )


def _object(notification: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = notification.get(name)
    if not isinstance(value, dict):
        raise NotAnSesNotification(f"no {name} object")
    return value


def _recipients(report: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    recipients = report.get(name)
    if not isinstance(recipients, list) or not all(
        isinstance(r, dict) and isinstance(r.get("emailAddress"), str) for r in recipients
    ):
        raise NotAnSesNotification(f"{name} is not a list of recipients")
    return recipients
