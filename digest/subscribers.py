"""Subscribers: adding, finding, listing, unsubscribing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.models import Frequency, Subscriber, SubscriberStatus


class SubscriberError(ValueError):
    """Bad input about a subscriber, worded for the person who typed it."""


def normalise_email(address: str) -> str:
    try:
        # No DNS: deliverability is proven by the confirmation email, not a lookup.
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid email address {address!r}: {exc}") from exc
    # RFC 5321 lets a server treat local parts case-sensitively, but no real
    # mailbox provider does; one person must not become two subscribers.
    return result.normalized.lower()


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SubscriberError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from exc
    return name


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == normalise_email(email)))


def add_subscriber(
    session: Session,
    *,
    email: str,
    now: datetime,
    interests: str = "",
    confirmed: bool = False,
    frequency: Frequency = Frequency.DAILY,
    send_hour: int = 7,
    timezone: str = "UTC",
    papers_per_digest: int = 5,
) -> Subscriber:
    address = normalise_email(email)
    if not 0 <= send_hour <= 23:
        raise SubscriberError(f"send hour must be 0-23, got {send_hour}")
    if not 1 <= papers_per_digest <= 50:
        raise SubscriberError(f"papers per digest must be 1-50, got {papers_per_digest}")
    validate_timezone(timezone)
    if session.scalar(select(Subscriber.id).where(Subscriber.email == address)) is not None:
        raise SubscriberError(f"{address} is already subscribed")
    subscriber = Subscriber(
        email=address,
        interests=interests.strip(),
        frequency=frequency,
        send_hour=send_hour,
        timezone=timezone,
        papers_per_digest=papers_per_digest,
        status=SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
        confirmed_at=now if confirmed else None,
        created_at=now,
    )
    session.add(subscriber)
    session.flush()
    return subscriber


def list_subscribers(
    session: Session, *, status: SubscriberStatus | None = None
) -> Sequence[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    return session.scalars(query).all()


def count_by_status(session: Session) -> dict[SubscriberStatus, int]:
    rows = session.execute(
        select(Subscriber.status, func.count()).group_by(Subscriber.status)
    ).all()
    return {status: count for status, count in rows}


def unsubscribe(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Unsubscribe; returns False when the address was already unsubscribed."""
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    return True
