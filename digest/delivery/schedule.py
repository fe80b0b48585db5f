"""When a subscriber's next digest is due, in their own time zone.

An *edition* names the period a digest covers for one reader: their local date
for a daily digest ("2026-11-21"), their ISO week for a weekly one ("2026-W47").
A reader is due once their local clock has passed their send hour (on their
weekday, for weekly readers) and no delivery exists yet for that edition. Late
dispatch still sends that day's digest; it never sends two.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from digest.delivery.models import Delivery
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.models import Subscriber

log = logging.getLogger(__name__)


def daily_edition(local_day: date) -> str:
    return local_day.isoformat()


def weekly_edition(local_day: date) -> str:
    year, week, _ = local_day.isocalendar()
    return f"{year}-W{week:02d}"


def due_subscribers(session: Session, *, now: datetime) -> list[tuple[int, str]]:
    """``(subscriber_id, edition)`` for every active reader whose digest is due."""
    due: list[tuple[int, str]] = []
    zones = session.scalars(
        select(Subscriber.timezone).where(Subscriber.status == SubscriberStatus.ACTIVE).distinct()
    ).all()
    # One query per time zone in use (hundreds at most), never one per reader.
    for zone in zones:
        try:
            local = now.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            # One bad row (an import that skipped validation) must not stop everyone.
            log.error("subscribers with unknown time zone %r are skipped", zone)
            continue
        daily, weekly = daily_edition(local.date()), weekly_edition(local.date())
        in_zone_and_hour = and_(
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.timezone == zone,
            Subscriber.send_hour <= local.hour,
        )
        daily_due = and_(
            Subscriber.frequency == Frequency.DAILY,
            ~exists().where(Delivery.subscriber_id == Subscriber.id, Delivery.edition == daily),
        )
        weekly_due = and_(
            Subscriber.frequency == Frequency.WEEKLY,
            Subscriber.weekly_day == local.weekday(),
            ~exists().where(Delivery.subscriber_id == Subscriber.id, Delivery.edition == weekly),
        )
        rows = session.execute(
            select(Subscriber.id, Subscriber.frequency)
            .where(in_zone_and_hour, or_(daily_due, weekly_due))
            .order_by(Subscriber.id)
        ).all()
        due.extend(
            (sid, daily if frequency == Frequency.DAILY else weekly) for sid, frequency in rows
        )
    return due


def edition_short_label(edition: str) -> str:
    """An edition as a subject line names it: "1 Dec", "week of 30 Nov" (its Monday)."""
    if "-W" in edition:
        year, week = edition.split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
        return f"week of {monday.day} {monday:%b}"
    day = date.fromisoformat(edition)
    return f"{day.day} {day:%b}"


def edition_label(edition: str) -> str:
    """A reader-facing name for an edition: "Saturday 21 November 2026", "week 47, 2026"."""
    if "-W" in edition:
        year, week = edition.split("-W")
        return f"week {int(week)}, {year}"
    day = date.fromisoformat(edition)
    return f"{day:%A} {day.day} {day:%B %Y}"
