"""Subscribers to and from CSV, on both database backends."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from digest.db.engine import make_engine, make_session_factory
from digest.db.limits import IN_LIST_CHUNK
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.subscriptions import csv_io
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.csv_io import (
    COLUMNS,
    CsvFileError,
    RowProblem,
    export_subscribers,
    import_subscribers,
)
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import Preferences, add_subscriber, find_subscriber
from tests.factories import NOW, make_subscriber

LATER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def exported(session: Session, status: SubscriberStatus | None = None) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    export_subscribers(session, out, status=status)
    return list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))


def csv_text(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n", newline="")


def all_subscribers(session: Session) -> list[Subscriber]:
    return list(session.scalars(select(Subscriber).order_by(Subscriber.email)))


def test_export_writes_the_documented_columns_and_joins_lists(session: Session) -> None:
    make_subscriber(
        session,
        email="ada@example.org",
        interests="diffusion, LLMs",
        followed_authors=["Hinton, G.", "Ada Lovelace"],
        categories=["cs.CL", "stat.ML"],
        excluded_keywords=["crypto"],
        frequency=Frequency.WEEKLY,
        weekly_day=4,
        send_hour=18,
        timezone="Europe/Paris",
        papers_per_digest=10,
    )
    out = io.StringIO(newline="")

    assert export_subscribers(session, out) == 1
    header, row = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(header) == COLUMNS
    assert dict(zip(header, row, strict=True)) == {
        "email": "ada@example.org",
        "status": "active",
        "interests": "diffusion, LLMs",
        "followed_authors": "Hinton, G.; Ada Lovelace",
        "categories": "cs.CL; stat.ML",
        "excluded_keywords": "crypto",
        "frequency": "weekly",
        "weekly_day": "4",
        "send_hour": "18",
        "timezone": "Europe/Paris",
        "papers_per_digest": "10",
        "created_at": NOW.isoformat(),
        "confirmed_at": NOW.isoformat(),
    }


def test_export_can_keep_one_status(session: Session) -> None:
    make_subscriber(session, email="ada@example.org")
    make_subscriber(session, email="bob@example.org", status=SubscriberStatus.PENDING)

    assert [r["email"] for r in exported(session, SubscriberStatus.PENDING)] == ["bob@example.org"]


def test_export_then_import_into_an_empty_database_keeps_every_preference(
    session: Session,
) -> None:
    make_subscriber(
        session,
        email="ada@example.org",
        interests='graph "neural" networks\nand a second line',
        followed_authors=["Hinton, G.", "Yann LeCun"],
        categories=["cs.LG", "math.OC"],
        excluded_keywords=["survey", "position paper"],
        frequency=Frequency.WEEKLY,
        weekly_day=6,
        send_hour=0,
        timezone="America/New_York",
        papers_per_digest=50,
    )
    make_subscriber(session, email="bob@example.org", status=SubscriberStatus.PAUSED)
    before = {s.email: (s.status, Preferences.of(s)) for s in all_subscribers(session)}
    out = io.StringIO(newline="")
    export_subscribers(session, out)
    session.execute(delete(Subscriber))

    result = import_subscribers(
        session, io.StringIO(out.getvalue(), newline=""), confirmed=True, now=LATER
    )

    assert result.summary() == "imported 2, skipped 0 existing, 0 invalid"
    after = {s.email: (s.status, Preferences.of(s)) for s in all_subscribers(session)}
    assert after == before
    assert {s.confirmed_at for s in all_subscribers(session)} == {LATER}


def test_import_without_confirmed_adds_pending_readers_with_defaults(session: Session) -> None:
    result = import_subscribers(
        session, csv_text("email", " Ada@Example.ORG "), confirmed=False, now=LATER
    )

    assert result.imported == ["ada@example.org"]
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    assert ada.status == SubscriberStatus.PENDING
    assert ada.confirmed_at is None
    assert ada.created_at == LATER
    assert (ada.frequency, ada.send_hour, ada.timezone, ada.papers_per_digest) == (
        Frequency.DAILY,
        7,
        "UTC",
        5,
    )


def test_invalid_rows_are_reported_by_file_line_and_the_rest_imported(
    session: Session,
) -> None:
    lines = csv_text(
        "\ufeffEmail,Interests,send_hour,timezone,papers_per_digest,frequency,status",
        'ok1@example.org,"two\nlines",9,Europe/Paris,3,weekly,',
        "not-an-address,,,,,,",
        "",
        "hour@example.org,,24,,,,",
        "zone@example.org,,,Mars/Olympus,,,",
        "many@example.org,,,,51,,",
        "often@example.org,,,,,hourly,",
        "left@example.org,,,,,,unsubscribed",
        "bounced@example.org,,,,,,bounced",
        "odd@example.org,,,,,,sleeping",
        "wide@example.org,a, b,,,,,",
        ",no address,,,,,",
        "ok1@EXAMPLE.org,,,,,,",
        "ok2@example.org",
    )

    result = import_subscribers(session, lines, confirmed=False, now=LATER)

    assert result.imported == ["ok1@example.org", "ok2@example.org"]
    assert [(p.line, p.reason.split(":")[0]) for p in result.invalid] == [
        (4, "invalid email address 'not-an-address'"),
        (6, "send_hour"),
        (7, "timezone"),
        (8, "papers_per_digest"),
        (9, "frequency"),
        (10, "status is unsubscribed"),
        (11, "status is bounced"),
        (12, "unknown status 'sleeping' (one of pending, active, paused, unsubscribed, bounced)"),
        (13, "8 fields but the header has 7 columns (unquoted comma?)"),
        (14, "no email address"),
        (15, "ok1@example.org repeats line 2"),
    ]
    assert result.summary() == "imported 2, skipped 0 existing, 11 invalid"
    ok1 = find_subscriber(session, "ok1@example.org")
    assert ok1 is not None
    assert (ok1.interests, ok1.send_hour, ok1.timezone, ok1.frequency) == (
        "two\nlines",
        9,
        "Europe/Paris",
        Frequency.WEEKLY,
    )


def test_existing_addresses_are_skipped_and_left_as_their_reader_set_them(
    session: Session,
) -> None:
    make_subscriber(
        session,
        email="ada@example.org",
        status=SubscriberStatus.UNSUBSCRIBED,
        interests="her own choice",
        send_hour=6,
    )

    result = import_subscribers(
        session,
        csv_text("email,interests,send_hour", "ADA@example.org,imported,20", "bob@example.org,,"),
        confirmed=True,
        now=LATER,
    )

    assert (result.imported, result.existing, result.invalid) == (
        ["bob@example.org"],
        ["ada@example.org"],
        [],
    )
    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    assert (ada.status, ada.interests, ada.send_hour) == (
        SubscriberStatus.UNSUBSCRIBED,
        "her own choice",
        6,
    )


def test_an_address_added_during_the_import_is_skipped_and_the_rest_imported(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ada subscribes from the site after the import looked the addresses up.
    make_subscriber(session, email="ada@example.org", interests="her own choice")
    monkeypatch.setattr(csv_io, "_known_addresses", lambda session, addresses: set())

    result = import_subscribers(
        session,
        csv_text("email,interests", "ada@example.org,imported", "bob@example.org,imported"),
        confirmed=True,
        now=LATER,
    )

    assert (result.imported, result.existing) == (["bob@example.org"], ["ada@example.org"])
    assert [(s.email, s.interests) for s in all_subscribers(session)] == [
        ("ada@example.org", "her own choice"),
        ("bob@example.org", "imported"),
    ]


def test_an_imported_reader_has_what_a_subscribed_one_has(session: Session) -> None:
    import_subscribers(session, csv_text("email", "ada@example.org"), confirmed=True, now=LATER)
    made = add_subscriber(session, email="bob@example.org", now=LATER, confirmed=True)

    ada = find_subscriber(session, "ada@example.org")
    assert ada is not None
    # The link versions start as a subscribed reader's do: at random, far above the
    # versions links signed before had.
    assert ada.confirm_nonce == made.confirm_nonce
    assert min(ada.token_version, made.token_version) >= 2**20
    assert ada.token_version != made.token_version
    assert (ada.followed_authors, ada.categories, ada.excluded_keywords) == ([], [], [])
    assert (ada.status, ada.confirmed_at, ada.unsubscribed_at) == (
        SubscriberStatus.ACTIVE,
        LATER,
        None,
    )


def test_confirmed_import_makes_readers_active_and_keeps_a_pause(session: Session) -> None:
    result = import_subscribers(
        session,
        csv_text(
            "email,status", "ada@example.org,active", "bob@example.org,paused", "cy@example.org,"
        ),
        confirmed=True,
        now=LATER,
    )

    assert result.invalid == []
    assert [(s.email, s.status, s.confirmed_at) for s in all_subscribers(session)] == [
        ("ada@example.org", SubscriberStatus.ACTIVE, LATER),
        ("bob@example.org", SubscriberStatus.PAUSED, LATER),
        ("cy@example.org", SubscriberStatus.ACTIVE, LATER),
    ]


def test_a_never_confirmed_row_is_not_activated_by_confirmed(session: Session) -> None:
    result = import_subscribers(
        session, csv_text("email,status", "ada@example.org,pending"), confirmed=True, now=LATER
    )

    assert result.invalid == [
        RowProblem(2, "status is pending (never confirmed): import it without --confirmed")
    ]
    assert all_subscribers(session) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("mail,interests\nada@example.org,x\n", "unknown column(s) 'mail'"),
        ("interests\nx\n", "the header has no 'email' column"),
        ("email,Email\nada@example.org,ada@example.org\n", "column(s) email appear more than once"),
    ],
)
def test_an_unreadable_file_imports_nothing(session: Session, text: str, message: str) -> None:
    with pytest.raises(CsvFileError, match=re.escape(message)):
        import_subscribers(session, io.StringIO(text, newline=""), confirmed=False, now=LATER)
    assert all_subscribers(session) == []


def test_a_large_file_reports_every_bad_repeated_and_known_row_exactly(session: Session) -> None:
    # More rows than one address lookup holds (IN_LIST_CHUNK), with the trouble
    # spread over both lookups: each reported once, with the message an operator
    # would get for that row alone.
    make_subscriber(session, email="known.early@example.org", interests="her own")
    make_subscriber(session, email="known.late@example.org", interests="his own")
    good = [f"reader.{n}@lab{n % 7}.example.org" for n in range(IN_LIST_CHUNK + 100)]
    trouble = {
        10: "Known.Early@Example.ORG",
        20: "ann@example",
        30: "reader.5@LAB5.example.org",
        40: "x@exa_mple.org",
        IN_LIST_CHUNK + 50: "known.late@example.org",
        IN_LIST_CHUNK + 60: "bob@example.org,,25",
        IN_LIST_CHUNK + 70: "reader.4@lab4.example.org",
    }
    rows = [trouble.get(n, address) for n, address in enumerate(good)]

    result = import_subscribers(
        session, csv_text("email,interests,send_hour", *rows), confirmed=True, now=LATER
    )

    def line(n: int) -> int:
        return n + 2  # the header is line 1

    assert result.invalid == [
        RowProblem(
            line(20),
            "invalid email address 'ann@example': "
            "The part after the @-sign is not valid. It should have a period.",
        ),
        RowProblem(line(30), f"reader.5@lab5.example.org repeats line {line(5)}"),
        RowProblem(
            line(40),
            "invalid email address 'x@exa_mple.org': "
            "The part after the @-sign contains invalid characters: '_'.",
        ),
        RowProblem(
            line(IN_LIST_CHUNK + 60), "send_hour: the hour must be a whole number from 0 to 23"
        ),
        RowProblem(line(IN_LIST_CHUNK + 70), f"reader.4@lab4.example.org repeats line {line(4)}"),
    ]
    assert result.existing == ["known.early@example.org", "known.late@example.org"]
    expected = [address.lower() for n, address in enumerate(rows) if n not in trouble]
    assert result.imported == expected
    assert result.summary() == f"imported {len(expected)}, skipped 2 existing, 5 invalid"
    stored = session.scalars(select(Subscriber.email).where(Subscriber.interests == "")).all()
    assert sorted(stored) == sorted(expected)
    known = find_subscriber(session, "known.late@example.org")
    assert known is not None and known.interests == "his own"


def test_a_file_larger_than_a_lookup_chunk_imports_into_sqlite_at_its_variable_limit(
    tmp_path: Path,
) -> None:
    # SQLite refuses a statement with more bound parameters than its build allows
    # (32,766 by default; this one allows more): lowered to the lookup size, a file
    # one row longer shows that no statement binds one parameter per row.
    engine = make_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)

    @event.listens_for(engine, "connect")
    def limit_variables(connection: sqlite3.Connection, _: object) -> None:
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, IN_LIST_CHUNK)

    engine.dispose()  # connections opened from here on carry the limit
    rows = [f"reader.{n}@example.org" for n in range(IN_LIST_CHUNK + 1)]
    with unit_of_work(make_session_factory(engine)) as session:
        result = import_subscribers(session, csv_text("email", *rows), confirmed=True, now=LATER)
    assert (len(result.imported), result.existing, result.invalid) == (len(rows), [], [])
    engine.dispose()
