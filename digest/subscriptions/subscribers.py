"""Subscribers: subscribing with double opt-in, preferences, address changes,
unsubscribing, and erasing. Plain functions on a Session; the web app, the CLI
and the tasks call them, and the caller's unit of work commits."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH
from psycopg import AsyncConnection
from sqlalchemy import Connection, CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from digest.bounces.models import MailEventRecord
from digest.bounces.reporting import events_for_export
from digest.delivery.models import Delivery, DeliveryPaper
from digest.subscriptions.choices import (
    DEFAULT_FREQUENCY,
    DEFAULT_PAPERS_PER_DIGEST,
    DEFAULT_SEND_HOUR,
    DEFAULT_TIMEZONE,
    DEFAULT_WEEKLY_DAY,
    MAX_PAPERS_PER_DIGEST,
    Frequency,
    SubscriberStatus,
)
from digest.subscriptions.feedback import feedback_of
from digest.subscriptions.models import Feedback, Subscriber

T = TypeVar("T")


class SubscriberError(ValueError):
    """Bad input about a subscriber, worded for the person who typed it."""


class InvalidEmail(SubscriberError):
    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"invalid email address {address!r}: {detail}")
        # What is wrong, without echoing the input (for a form, which shows it anyway).
        self.detail = detail


# Why an address that needs SMTPUTF8 is refused where the mail server lacks it.
NEEDS_SMTPUTF8 = (
    "this address has characters beyond ASCII before the @, and our mail server cannot "
    "send to such addresses; please use another address"
)


def normalise_email(address: str, *, smtputf8: bool = True) -> str:
    """The address as stored, or :class:`InvalidEmail`. ``smtputf8``: whether the mail
    server can carry a local part beyond ASCII (SMTPUTF8); without it such an address
    could never be sent to, so it is refused here rather than failing at every send."""
    plain = _plain_address(address.strip())
    if plain is not None:
        return plain
    try:
        # No DNS: deliverability is proven by the confirmation email, not a lookup.
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(address, str(exc)) from exc
    if not smtputf8 and not result.local_part.isascii():
        raise InvalidEmail(address, NEEDS_SMTPUTF8)
    # RFC 5321 lets a server treat local parts case-sensitively, but no real
    # mailbox provider does; one person must not become two subscribers.
    return result.normalized.lower()


def _plain_address(address: str) -> str | None:
    """``normalise_email``'s answer for the common shape of address, or None to
    ask email-validator about the whole address.

    A CSV import validates tens of thousands of addresses over a few hundred
    domains, and email-validator spends three quarters of its time on the domain
    (IDNA, UTS-46). For an ASCII address with one ``@``, no quotes, no display
    name and a local part of plain dot-atom text, the library splits at the ``@``,
    returns the local part unchanged and checks the domain by itself (then the
    lengths): so the domain's verdict can be looked up once per domain. Anything
    else, and every invalid address, takes the library's own path, so its
    messages are the library's. tests/subscriptions/test_email_addresses.py
    holds the two paths to the same answers.
    """
    if not address.isascii() or address.count("@") != 1 or '"' in address or "<" in address:
        return None
    local, _, domain = address.partition("@")
    if not DOT_ATOM_TEXT.match(local):
        return None
    checked = _checked_domain(domain)
    if checked is None:
        return None
    unicode_domain, ascii_domain = checked
    normalized = f"{local}@{unicode_domain}"
    longest = max(len(address), len(normalized.encode()), len(local) + 1 + len(ascii_domain))
    if longest > EMAIL_MAX_LENGTH:
        return None
    return normalized.lower()


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """The domain as email-validator normalises it (Unicode, ASCII), or None when
    the library refuses it (the caller then lets the library say why)."""
    if not domain or (domain.startswith("[") and domain.endswith("]")):
        return None  # nothing after the @, or an IP address literal
    try:
        probe = validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return probe.domain, probe.ascii_domain


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
    frequency: Frequency = DEFAULT_FREQUENCY,
    send_hour: int = DEFAULT_SEND_HOUR,
    timezone: str = DEFAULT_TIMEZONE,
    papers_per_digest: int = DEFAULT_PAPERS_PER_DIGEST,
) -> Subscriber:
    address = normalise_email(email)
    if not 0 <= send_hour <= 23:
        raise SubscriberError(f"send hour must be 0-23, got {send_hour}")
    if not 1 <= papers_per_digest <= MAX_PAPERS_PER_DIGEST:
        raise SubscriberError(
            f"papers per digest must be 1-{MAX_PAPERS_PER_DIGEST}, got {papers_per_digest}"
        )
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


def unsubscribe_by_link(
    connection: Session | Connection, subscriber_id: int, version: int, *, now: datetime
) -> bool:
    """Unsubscribe the holder of a link in one statement, for the one-click POSTs
    that arrive by the thousand after a send; False when no subscriber has that id
    and token version. Idempotent: a second click keeps the first one's time."""
    result: CursorResult[Any] = connection.execute(  # type: ignore[assignment]
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.token_version == version)
        .values(
            status=SubscriberStatus.UNSUBSCRIBED,
            unsubscribed_at=func.coalesce(Subscriber.unsubscribed_at, now),
        )
    )
    return bool(result.rowcount)


# unsubscribe_by_link as PostgreSQL SQL, for a bare psycopg connection.
_UNSUBSCRIBE_BY_LINK_SQL = (
    "UPDATE subscribers SET status = %s, unsubscribed_at = coalesce(unsubscribed_at, %s) "
    "WHERE id = %s AND token_version = %s"
)


async def unsubscribe_by_link_async(
    connection: AsyncConnection[Any], subscriber_id: int, version: int, *, now: datetime
) -> bool:
    """:func:`unsubscribe_by_link` on PostgreSQL through psycopg's async connection
    (the one-click path of the web app, which runs it on the event loop)."""
    cursor = await connection.execute(
        _UNSUBSCRIBE_BY_LINK_SQL,
        (SubscriberStatus.UNSUBSCRIBED.value, now, subscriber_id, version),
    )
    return bool(cursor.rowcount)


def unsubscribe(session: Session, subscriber: Subscriber, *, now: datetime) -> bool:
    """Unsubscribe; returns False when the address was already unsubscribed."""
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    return True


class Notice(enum.StrEnum):
    """The emails a subscriber gets about their subscription (not digests)."""

    CONFIRM = "confirm"
    ALREADY_SUBSCRIBED = "already_subscribed"
    CONFIRM_EMAIL_CHANGE = "confirm_email_change"
    NEW_LINKS = "new_links"


@dataclass(frozen=True)
class NoticeDue:
    """What a request did, and which notice (if any) to send about it."""

    subscriber_id: int | None
    notice: Notice | None


def request_subscription(
    session: Session,
    *,
    email: str,
    now: datetime,
    interests: str = "",
    frequency: Frequency = DEFAULT_FREQUENCY,
) -> NoticeDue:
    """Someone asked to subscribe ``email`` from the public form.

    Nothing here tells the caller whether the address was known: a new or
    pending address gets a confirmation link, an active or paused one a note
    with its preferences link, a left one (unsubscribed, bounced) must confirm
    again. A pending reader's interests are not overwritten by a stranger.
    """
    address = normalise_email(email)
    interests = _bounded(interests, "interests", MAX_INTERESTS)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = add_subscriber(
            session, email=address, now=now, interests=interests, frequency=frequency
        )
        return NoticeDue(subscriber.id, Notice.CONFIRM)
    if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        return NoticeDue(subscriber.id, Notice.ALREADY_SUBSCRIBED)
    if subscriber.status != SubscriberStatus.PENDING:
        # Back after leaving: a fresh start that must be confirmed like the first.
        subscriber.status = SubscriberStatus.PENDING
        subscriber.interests = interests
        subscriber.frequency = frequency
    return NoticeDue(subscriber.id, Notice.CONFIRM)


def confirm_subscription(subscriber: Subscriber, *, now: datetime) -> bool:
    """Activate a pending subscriber; False when there was nothing to confirm.
    Either way the confirmation link is used up."""
    subscriber.confirm_nonce += 1
    if subscriber.status != SubscriberStatus.PENDING:
        return False
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    return True


MAX_INTERESTS = 2000
MAX_LIST_ITEMS = 50
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?$")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Preferences:
    interests: str
    followed_authors: tuple[str, ...]
    categories: tuple[str, ...]
    excluded_keywords: tuple[str, ...]
    frequency: Frequency
    weekly_day: int
    send_hour: int
    timezone: str
    papers_per_digest: int

    @classmethod
    def of(cls, subscriber: Subscriber) -> Preferences:
        return cls(
            interests=subscriber.interests,
            followed_authors=tuple(subscriber.followed_authors),
            categories=tuple(subscriber.categories),
            excluded_keywords=tuple(subscriber.excluded_keywords),
            frequency=subscriber.frequency,
            weekly_day=subscriber.weekly_day,
            send_hour=subscriber.send_hour,
            timezone=subscriber.timezone,
            papers_per_digest=subscriber.papers_per_digest,
        )


# The form's field names, one per preference.
PREFERENCE_FIELDS = tuple(f.name for f in fields(Preferences))


class InvalidPreferences(SubscriberError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def parse_preferences(form: Mapping[str, str]) -> Preferences:
    """Preferences from the form's text fields; every bad field is reported at once
    (``InvalidPreferences.errors`` maps field name to message)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    # The parsers are built once, not per call: a CSV import calls this per row.
    for field, parse, default in _PREFERENCE_PARSERS:
        try:
            values[field] = parse(form.get(field, "").strip())
        except SubscriberError as exc:
            errors[field] = str(exc)
            values[field] = default
    if errors:
        raise InvalidPreferences(errors)
    return Preferences(**values)


def _interests(text: str) -> str:
    return _bounded(text, "interests", MAX_INTERESTS)


_AUTHOR_SEPARATORS = re.compile(r"[\n;]")
_CATEGORY_SEPARATORS = re.compile(r"[\s,;]+")
_KEYWORD_SEPARATORS = re.compile(r"[\n,;]")


def _authors(text: str) -> tuple[str, ...]:
    # One name a line (or ";"): names themselves may hold commas ("Hinton, G.").
    return _items(_AUTHOR_SEPARATORS.split(text), "authors", max_length=200)


def _categories(text: str) -> tuple[str, ...]:
    found = _items(_CATEGORY_SEPARATORS.split(text), "categories", max_length=40)
    bad = [c for c in found if not _CATEGORY.match(c)]
    if bad:
        raise SubscriberError(f"not an arXiv category: {', '.join(bad)} (e.g. cs.CL, stat.ML)")
    return found


def _keywords(text: str) -> tuple[str, ...]:
    return _items(_KEYWORD_SEPARATORS.split(text), "keywords", max_length=100)


def _frequency(text: str) -> Frequency:
    try:
        return Frequency(text)
    except ValueError:
        raise SubscriberError("choose daily or weekly") from None


def _whole(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        # isdigit() alone admits "²" and other digits int() refuses.
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise SubscriberError(f"{what} must be a whole number from {low} to {high}")
        return int(text)

    return parse


# (field, parser, value used when the field is bad), in the order errors are listed.
_PREFERENCE_PARSERS: tuple[tuple[str, Callable[[str], Any], Any], ...] = (
    ("interests", _interests, ""),
    ("followed_authors", _authors, ()),
    ("categories", _categories, ()),
    ("excluded_keywords", _keywords, ()),
    ("frequency", _frequency, DEFAULT_FREQUENCY),
    ("weekly_day", _whole(0, 6, "weekday"), DEFAULT_WEEKLY_DAY),
    ("send_hour", _whole(0, 23, "the hour"), DEFAULT_SEND_HOUR),
    ("timezone", validate_timezone, DEFAULT_TIMEZONE),
    (
        "papers_per_digest",
        _whole(1, MAX_PAPERS_PER_DIGEST, "papers per digest"),
        DEFAULT_PAPERS_PER_DIGEST,
    ),
)


def apply_preferences(subscriber: Subscriber, preferences: Preferences) -> None:
    subscriber.interests = preferences.interests
    subscriber.followed_authors = list(preferences.followed_authors)
    subscriber.categories = list(preferences.categories)
    subscriber.excluded_keywords = list(preferences.excluded_keywords)
    subscriber.frequency = preferences.frequency
    subscriber.weekly_day = preferences.weekly_day
    subscriber.send_hour = preferences.send_hour
    subscriber.timezone = preferences.timezone
    subscriber.papers_per_digest = preferences.papers_per_digest


def set_paused(subscriber: Subscriber, paused: bool) -> bool:
    """Pause or resume digests; False when the subscriber was not in a state to."""
    before, after = (
        (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
        if paused
        else (SubscriberStatus.PAUSED, SubscriberStatus.ACTIVE)
    )
    if subscriber.status != before:
        return False
    subscriber.status = after
    return True


def resubscribe(subscriber: Subscriber, *, now: datetime) -> bool:
    """Undo an unsubscribe from a link we mailed to this address (which proves it)."""
    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        return False
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.unsubscribed_at = None
    subscriber.confirmed_at = subscriber.confirmed_at or now
    return True


def request_email_change(
    session: Session, subscriber: Subscriber, new_email: str, *, smtputf8: bool = True
) -> NoticeDue:
    """Remember ``new_email`` until its owner confirms it from the link sent there.

    Whether another subscriber has the address is not even looked up: the request
    does the same work and the page says the same whether it is free or taken, so
    no subscriber can test a stranger's address. The notice is chosen when sent
    (:mod:`digest.subscriptions.notices`): a taken address gets a note that
    someone asked, with no link, a free one the confirmation link. ``smtputf8``: the
    mail server can carry a local part beyond ASCII (see :func:`normalise_email`).
    """
    address = normalise_email(new_email, smtputf8=smtputf8)
    if address == subscriber.email:
        raise SubscriberError(f"{address} is already your address")
    subscriber.pending_email = address
    return NoticeDue(subscriber.id, Notice.CONFIRM_EMAIL_CHANGE)


def confirm_email_change(session: Session, subscriber: Subscriber) -> str:
    """Switch to the pending address; the link that did it is used up."""
    address = subscriber.pending_email
    subscriber.confirm_nonce += 1
    if address is None:
        raise SubscriberError("there is no address change waiting to be confirmed")
    taken = session.scalar(select(Subscriber.id).where(Subscriber.email == address))
    subscriber.pending_email = None
    if taken is not None:
        raise SubscriberError(f"{address} has meanwhile subscribed on its own; nothing changed")
    subscriber.email = address
    # The old mailbox's links (every digest there) no longer open the subscription.
    revoke_links(subscriber)
    return address


def revoke_links(subscriber: Subscriber) -> None:
    """Every link and form issued so far stops working; links made from now on work."""
    subscriber.token_version += 1


def sign_out_links(subscriber: Subscriber) -> NoticeDue:
    """ "Sign out all my links": revoke them and mail a fresh one to the address on file,
    which only its owner reads (a forwarded link's holder does not get it)."""
    revoke_links(subscriber)
    return NoticeDue(subscriber.id, Notice.NEW_LINKS)


def personal_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about this subscriber, for "download my data"."""
    deliveries = session.scalars(
        select(Delivery).where(Delivery.subscriber_id == subscriber.id).order_by(Delivery.id)
    ).all()
    return {
        "email": subscriber.email,
        "pending_email": subscriber.pending_email,
        "status": subscriber.status.value,
        "created_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "preferences": {
            "interests": subscriber.interests,
            "followed_authors": subscriber.followed_authors,
            "categories": subscriber.categories,
            "excluded_keywords": subscriber.excluded_keywords,
            "frequency": subscriber.frequency.value,
            "weekly_day": WEEKDAYS[subscriber.weekly_day],
            "send_hour": subscriber.send_hour,
            "timezone": subscriber.timezone,
            "papers_per_digest": subscriber.papers_per_digest,
        },
        "feedback": [
            {
                "kind": feedback.kind.value,
                "title": paper.shown_title,
                "url": paper.url,
                "at": _iso(feedback.created_at),
            }
            for paper, feedback in feedback_of(session, subscriber)
        ],
        "digests": [
            {
                "edition": delivery.edition,
                "status": delivery.status.value,
                "sent_at": _iso(delivery.sent_at),
                "message_id": delivery.message_id,
                "papers": [
                    {"title": p.paper.shown_title, "url": p.paper.url, "reason": p.reason}
                    for p in delivery.papers
                ],
            }
            for delivery in deliveries
        ],
        # What receiving systems told us about mail to this address (bounces, complaints).
        "mail_events": events_for_export(session, subscriber.id),
    }


def erase_subscriber(session: Session, subscriber: Subscriber) -> None:
    """Delete the subscriber and every row about them: nothing identifying is kept.

    Explicit deletes rather than relying on ``ON DELETE CASCADE``, which SQLite
    honours only when foreign keys are switched on for the connection.
    """
    delivery_ids = select(Delivery.id).where(Delivery.subscriber_id == subscriber.id)
    session.execute(delete(Feedback).where(Feedback.subscriber_id == subscriber.id))
    session.execute(delete(MailEventRecord).where(MailEventRecord.subscriber_id == subscriber.id))
    session.execute(delete(DeliveryPaper).where(DeliveryPaper.delivery_id.in_(delivery_ids)))
    session.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber.id))
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber.id))
    session.expunge(subscriber)


def _bounded(text: str, what: str, limit: int) -> str:
    text = text.strip()
    if len(text) > limit:
        raise SubscriberError(f"{what} must be at most {limit} characters")
    return text


def _items(parts: list[str], what: str, *, max_length: int) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(" ".join(p.split()) for p in parts if p.strip()))
    if len(items) > MAX_LIST_ITEMS:
        raise SubscriberError(f"at most {MAX_LIST_ITEMS} {what}")
    long = [item for item in items if len(item) > max_length]
    if long:
        raise SubscriberError(f"{what} must be at most {max_length} characters each")
    return items


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
