from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from digest.delivery.models import Delivery
from digest.delivery.schedule import due_subscribers, edition_label, edition_short_label
from digest.subscriptions.choices import Frequency, SubscriberStatus
from tests.factories import make_subscriber

# Saturday 21 November 2026, 09:30 UTC.
NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def test_readers_are_due_once_their_local_send_hour_has_come(session: Session) -> None:
    london = make_subscriber(session, timezone="Europe/London", send_hour=9)  # 09:30 there
    tokyo = make_subscriber(session, timezone="Asia/Tokyo", send_hour=18)  # 18:30 there
    new_york = make_subscriber(session, timezone="America/New_York", send_hour=7)  # 04:30 there
    late = make_subscriber(session, timezone="UTC", send_hour=10)

    due = dict(due_subscribers(session, now=NOW))

    assert due == {london.id: "2026-11-21", tokyo.id: "2026-11-21"}
    assert new_york.id not in due and late.id not in due


def test_the_edition_is_the_readers_local_date(session: Session) -> None:
    # 10:30 UTC on Saturday is already Sunday 00:30 in Kiritimati (UTC+14).
    kiritimati = make_subscriber(session, timezone="Pacific/Kiritimati", send_hour=0)
    later = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    assert due_subscribers(session, now=later) == [(kiritimati.id, "2026-11-22")]


def test_a_reader_with_a_delivery_for_the_edition_is_not_due_again(session: Session) -> None:
    reader = make_subscriber(session, send_hour=6)
    session.add(Delivery(subscriber_id=reader.id, edition="2026-11-21"))
    session.flush()
    assert due_subscribers(session, now=NOW) == []
    # The next local day is a new edition.
    tomorrow = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    assert due_subscribers(session, now=tomorrow) == [(reader.id, "2026-11-22")]


def test_weekly_readers_are_due_on_their_weekday_once_per_iso_week(session: Session) -> None:
    saturday = make_subscriber(session, frequency=Frequency.WEEKLY, weekly_day=5, send_hour=8)
    monday = make_subscriber(session, frequency=Frequency.WEEKLY, weekly_day=0, send_hour=8)

    assert due_subscribers(session, now=NOW) == [(saturday.id, "2026-W47")]
    assert monday.id not in dict(due_subscribers(session, now=NOW))


def test_a_reader_with_an_unknown_time_zone_does_not_stop_the_others(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    make_subscriber(session, timezone="Mars/Olympus_Mons", send_hour=0)
    fine = make_subscriber(session, send_hour=0)
    assert due_subscribers(session, now=NOW) == [(fine.id, "2026-11-21")]
    assert "unknown time zone 'Mars/Olympus_Mons'" in caplog.text


def test_only_active_readers_are_due(session: Session) -> None:
    for status in SubscriberStatus:
        make_subscriber(session, status=status, send_hour=0)
    due = due_subscribers(session, now=NOW)
    assert len(due) == 1


def test_editions_have_reader_facing_names() -> None:
    assert edition_label("2026-11-21") == "Saturday 21 November 2026"
    assert edition_label("2026-W47") == "week 47, 2026"
    # In a subject line: short, and a week named by its Monday.
    assert edition_short_label("2026-12-01") == "1 Dec"
    assert edition_short_label("2026-W49") == "week of 30 Nov"
    assert edition_short_label("2027-W01") == "week of 4 Jan"
