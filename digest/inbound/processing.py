"""What one received message does: bounce a reader, record a complaint, unsubscribe
the holder of a signed token, or nothing (dropped and counted).

Anyone on the internet can mail us, so nothing here acts on what a message merely
claims. A report counts only when it names a delivery of ours in a way we signed: it
was sent to a VERP address (checked at RCPT), or the message it returns carries our
VERP Return-Path or a List-Unsubscribe token we signed. A Message-ID alone proves
nothing (ours are ``<digest.EDITION.SUBSCRIBER@domain>``, easy to guess), so it only
narrows a signed token's reader down to one delivery. An unsubscribe counts only with
a valid unsubscribe token, and unsubscribes that token's reader and nobody else.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.arf import arf_events
from digest.bounces.dsn import dsn_events
from digest.bounces.events import EventKind, MailEvent
from digest.bounces.reports import (
    OriginalHeaders,
    field,
    original_headers,
    parse_message,
    report_type,
)
from digest.delivery.models import Delivery
from digest.inbound.recipients import Recipient, RecipientKind
from digest.mail.bounces import BounceAddresses, BounceKind, BounceTarget
from digest.subscriptions.subscribers import unsubscribe_by_link
from digest.subscriptions.tokens import InvalidToken, Purpose, Signer, TokenClaims

# An itsdangerous token (payload.timestamp.signature, URL-safe base64), as our links
# and the mailto subject carry it.
_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
# Our unsubscribe link or mailto inside a List-Unsubscribe header.
_LINK_TOKEN = re.compile(
    r"/unsubscribe/([A-Za-z0-9_.-]+)|subject=unsubscribe(?:%20|\+| )([A-Za-z0-9_.-]+)"
)


class Outcome(enum.StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    # In words, for the log: what was done, or why nothing was.
    detail: str


# record_event with the policy bound: None when the event names nobody we know.
Recorder = Callable[[Session, MailEvent, datetime], object | None]


class InboundMail:
    """What ``digest inbound`` does with a message, given a session to do it in."""

    def __init__(self, bounces: BounceAddresses, signer: Signer, record: Recorder) -> None:
        self.bounces = bounces
        self.signer = signer
        self.record = record

    def receive(
        self, session: Session, raw: bytes, recipients: Sequence[Recipient], *, now: datetime
    ) -> Received:
        message = parse_message(raw)
        unsubscribe = [r for r in recipients if r.kind == RecipientKind.UNSUBSCRIBE]
        if unsubscribe:
            return self._unsubscribe(session, message, unsubscribe, now=now)
        return self._report(session, message, recipients, now=now)

    def _unsubscribe(
        self,
        session: Session,
        message: Message,
        recipients: Sequence[Recipient],
        *,
        now: datetime,
    ) -> Received:
        # The token in the address (unsubscribe+TOKEN@) or, as our mailto writes it,
        # in the subject ("unsubscribe TOKEN"); the first one that verifies counts.
        candidates = [r.token for r in recipients if r.token]
        # A few at most: each costs an HMAC, and a subject can be long.
        candidates += _TOKEN.findall(field(message, "Subject") or "")[:5]
        claims = self._first_valid(candidates)
        if claims is None:
            return Received(Outcome.DROPPED, "unsubscribe mail without a valid token")
        if not unsubscribe_by_link(session, claims.subscriber_id, claims.version, now=now):
            # Erased since, or their links revoked: the token names nobody now.
            return Received(Outcome.DROPPED, "unsubscribe token of no current reader")
        return Received(Outcome.UNSUBSCRIBE, f"unsubscribed subscriber {claims.subscriber_id}")

    def _report(
        self,
        session: Session,
        message: Message,
        recipients: Sequence[Recipient],
        *,
        now: datetime,
    ) -> Received:
        kind = report_type(message)
        if kind not in ("delivery-status", "feedback-report"):
            return Received(
                Outcome.DROPPED, f"not a DSN or feedback report ({kind or 'no report'})"
            )
        original = original_headers(message)
        verp = next((r.target for r in recipients if r.target is not None), None)
        delivery_id, subscriber_id, how = self._about(session, verp, original)
        if delivery_id is None and subscriber_id is None:
            return Received(Outcome.DROPPED, f"{kind} report names no message we signed")
        parse = dsn_events if kind == "delivery-status" else arf_events
        events = parse(
            message, received_at=now, delivery_id=delivery_id, subscriber_id=subscriber_id
        )
        event = _most_severe(events)
        if event is None:
            return Received(Outcome.DROPPED, f"{kind} report with no failure or complaint in it")
        if self.record(session, event, now) is None:
            return Received(Outcome.DROPPED, f"{kind} report about a reader no longer here")
        outcome = Outcome.COMPLAINT if event.kind == EventKind.COMPLAINT else Outcome.BOUNCE
        named = (
            f"delivery {delivery_id}" if delivery_id is not None else f"subscriber {subscriber_id}"
        )
        return Received(outcome, f"{event.kind} for {named} (found by {how})")

    def _about(
        self, session: Session, verp: BounceTarget | None, original: OriginalHeaders | None
    ) -> tuple[int | None, int | None, str]:
        """(delivery id, subscriber id, how it was found) of the message a report is
        about, from what we signed; (None, None, "") when nothing signed names one."""
        target = verp
        how = "the VERP address it was sent to"
        if target is None and original is not None and original.return_path:
            target = self.bounces.read(original.return_path)
            how = "the returned message's Return-Path"
        if target is not None:
            if target.kind == BounceKind.DELIVERY:
                return target.id, None, how
            return None, target.id, how
        if original is None or not original.list_unsubscribe:
            return None, None, ""
        claims = self._first_valid(
            [a or b for a, b in _LINK_TOKEN.findall(unquote(original.list_unsubscribe))][:5]
        )
        if claims is None:
            return None, None, ""
        delivery_id = None
        if original.message_id:
            # (subscriber_id, edition) is unique and indexed: this reads a few rows.
            delivery_id = session.scalar(
                select(Delivery.id).where(
                    Delivery.subscriber_id == claims.subscriber_id,
                    Delivery.message_id == original.message_id,
                )
            )
        return delivery_id, claims.subscriber_id, "the returned message's unsubscribe token"

    def _first_valid(self, tokens: Sequence[str]) -> TokenClaims | None:
        for token in tokens:
            try:
                return self.signer.verify(Purpose.UNSUBSCRIBE, token)
            except InvalidToken:
                continue
        return None


def _most_severe(events: Sequence[MailEvent]) -> MailEvent | None:
    """The one event a report counts as: our messages have one recipient each, so a
    report listing several says one thing about one reader, and its worst counts."""
    order = (EventKind.COMPLAINT, EventKind.HARD_BOUNCE, EventKind.SOFT_BOUNCE)
    for kind in order:
        for event in events:
            if event.kind == kind:
                return event
    return None
