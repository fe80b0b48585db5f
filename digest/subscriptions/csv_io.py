"""Subscribers as CSV, for operators moving readers in and out in bulk.

One row per subscriber. List fields are joined with "; ", a separator the
preferences form splits on and no stored item can contain, so an exported row
reads back as it was written. Import only ever adds: an address that is already
known is left exactly as its reader set it. Nothing here commits.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db.dialects import insert_absent_rows, one_of
from digest.db.limits import IN_LIST_CHUNK
from digest.subscriptions.choices import (
    DEFAULT_FREQUENCY,
    DEFAULT_PAPERS_PER_DIGEST,
    DEFAULT_SEND_HOUR,
    DEFAULT_TIMEZONE,
    DEFAULT_WEEKLY_DAY,
    SubscriberStatus,
)
from digest.subscriptions.models import FIRST_CONFIRM_NONCE, Subscriber, first_token_version
from digest.subscriptions.subscribers import (
    PREFERENCE_FIELDS,
    Preferences,
    SubscriberError,
    list_subscribers,
    normalise_email,
    parse_preferences,
)

COLUMNS = ("email", "status", *PREFERENCE_FIELDS, "created_at", "confirmed_at")
LIST_SEPARATOR = "; "
# What an absent or empty cell means: the same as `digest subscribers add`
# without options. Spelled as text because they go through the form parser.
_DEFAULTS = {
    "frequency": DEFAULT_FREQUENCY.value,
    "weekly_day": str(DEFAULT_WEEKLY_DAY),
    "send_hour": str(DEFAULT_SEND_HOUR),
    "timezone": DEFAULT_TIMEZONE,
    "papers_per_digest": str(DEFAULT_PAPERS_PER_DIGEST),
}


class CsvFileError(SubscriberError):
    """The file as a whole cannot be read (no header, unknown columns): nothing is imported."""


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str


@dataclass(frozen=True)
class ImportRow:
    """A row that passed validation, not yet compared with the database."""

    line: int
    email: str
    status: SubscriberStatus | None
    preferences: Preferences


@dataclass
class ImportResult:
    imported: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    invalid: list[RowProblem] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"imported {len(self.imported)}, skipped {len(self.existing)} existing, "
            f"{len(self.invalid)} invalid"
        )


def subscriber_row(subscriber: Subscriber) -> list[str]:
    """One subscriber as CSV cells, in the order of :data:`COLUMNS`."""
    return [
        subscriber.email,
        subscriber.status.value,
        subscriber.interests,
        LIST_SEPARATOR.join(subscriber.followed_authors),
        LIST_SEPARATOR.join(subscriber.categories),
        LIST_SEPARATOR.join(subscriber.excluded_keywords),
        subscriber.frequency.value,
        str(subscriber.weekly_day),
        str(subscriber.send_hour),
        subscriber.timezone,
        str(subscriber.papers_per_digest),
        subscriber.created_at.isoformat(),
        subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else "",
    ]


def export_subscribers(
    session: Session, out: TextIO, *, status: SubscriberStatus | None = None
) -> int:
    """Write a header and one row per subscriber (oldest first); returns the row count."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    subscribers = list_subscribers(session, status=status)
    writer.writerows(subscriber_row(s) for s in subscribers)
    return len(subscribers)


def parse_subscriber_rows(
    lines: Iterable[str], *, confirmed: bool
) -> tuple[list[ImportRow], list[RowProblem]]:
    """Validate every row of a CSV file without touching the database.

    Line numbers are those of the file (the header is line 1), so that an
    operator can find the row in an editor. Raises :class:`CsvFileError` when
    the file cannot be read as a whole.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("the file is empty: expected a header row such as 'email'") from None
    except csv.Error as exc:
        raise CsvFileError(f"line 1: {exc}") from exc
    names = _column_names(header)
    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    first_line_of: dict[str, int] = {}
    with _collector_paused():
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # The reader cannot resynchronise after a malformed record.
                raise CsvFileError(f"line {line}: {exc}") from exc
            if not any(cell.strip() for cell in cells):
                continue
            try:
                row = _parse_row(line, names, cells, confirmed=confirmed)
            except SubscriberError as exc:
                problems.append(RowProblem(line, str(exc)))
                continue
            if row.email in first_line_of:
                problems.append(
                    RowProblem(line, f"{row.email} repeats line {first_line_of[row.email]}")
                )
                continue
            first_line_of[row.email] = line
            rows.append(row)
    return rows, problems


def import_subscribers(
    session: Session, lines: Iterable[str], *, confirmed: bool, now: datetime
) -> ImportResult:
    """Add the valid rows' subscribers; skip known addresses; report invalid rows.

    New subscribers are pending; with ``confirmed`` they are active, or paused
    when their row says paused. No email is sent from here. Raises :class:`CsvFileError` before
    touching the database when the file as a whole is unreadable.
    """
    with _collector_paused():
        rows, problems = parse_subscriber_rows(lines, confirmed=confirmed)
        result = ImportResult(invalid=problems)
        known = _known_addresses(session, [row.email for row in rows])
        new_rows = [row for row in rows if row.email not in known]
        # One bulk insert (COPY on PostgreSQL), not an ORM object and a flush per reader:
        # files of tens of thousands of rows are the point of an import. Rows were
        # validated by the form's parser above, so the values go in as they are.
        added = insert_absent_rows(
            session,
            Subscriber,
            _IMPORT_COLUMNS,
            [_new_subscriber(row, confirmed=confirmed, now=now) for row in new_rows],
            conflict_column="email",
        )
    for row in rows:
        # An address known before, or added by someone else since the lookup.
        (result.imported if row.email in added else result.existing).append(row.email)
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration.

    An import holds a few small containers per row until it ends; with tens of
    thousands of rows the collector rescans them all, over and over, and that
    was a third of a 50,000-row import's time. They form no cycles, and what
    the import leaves behind is collected as usual once it is switched back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_IMPORT_COLUMNS = (
    "email",
    "status",
    "interests",
    "followed_authors",
    "categories",
    "excluded_keywords",
    "frequency",
    "weekly_day",
    "send_hour",
    "timezone",
    "papers_per_digest",
    "token_version",
    "confirm_nonce",
    "created_at",
    "confirmed_at",
)


def _new_subscriber(row: ImportRow, *, confirmed: bool, now: datetime) -> tuple[object, ...]:
    """A new reader's values in :data:`_IMPORT_COLUMNS` order, as `add_subscriber` sets them."""
    status = SubscriberStatus.PENDING
    if confirmed:
        # A pause survives the move; anything else a confirmed import makes active.
        paused = row.status == SubscriberStatus.PAUSED
        status = SubscriberStatus.PAUSED if paused else SubscriberStatus.ACTIVE
    p = row.preferences
    return (
        row.email,
        # Plain values: COPY writes what it is given, past the ORM's enum types.
        status.value,
        p.interests,
        list(p.followed_authors),
        list(p.categories),
        list(p.excluded_keywords),
        p.frequency.value,
        p.weekly_day,
        p.send_hour,
        p.timezone,
        p.papers_per_digest,
        first_token_version(),
        FIRST_CONFIRM_NONCE,
        now,
        now if confirmed else None,
    )


def _column_names(header: Sequence[str]) -> list[str]:
    names = [cell.strip().lower() for cell in header]
    if names:
        # Spreadsheet programs start "CSV UTF-8" files with a byte-order mark.
        names[0] = names[0].removeprefix("\ufeff").strip()
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise CsvFileError(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)} in the header; "
            f"expected some of: {', '.join(COLUMNS)}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CsvFileError(f"column(s) {', '.join(repeated)} appear more than once in the header")
    if "email" not in names:
        raise CsvFileError("the header has no 'email' column")
    return names


def _parse_row(
    line: int, names: Sequence[str], cells: Sequence[str], *, confirmed: bool
) -> ImportRow:
    if len(cells) > len(names):
        # Most often an unquoted comma inside interests or an author's name.
        raise SubscriberError(
            f"{len(cells)} fields but the header has {len(names)} columns (unquoted comma?)"
        )
    # A short row leaves its last columns empty, as spreadsheets often write them.
    values = {name: cell.strip() for name, cell in zip(names, cells, strict=False)}
    if not values.get("email"):
        raise SubscriberError("no email address")
    email = normalise_email(values["email"])
    status = _row_status(values.get("status", ""), confirmed=confirmed)
    form = {column: values.get(column) or _DEFAULTS.get(column, "") for column in PREFERENCE_FIELDS}
    # The form's parser holds the domain rules (time zone, ranges, categories, lengths).
    preferences = parse_preferences(form)
    return ImportRow(line=line, email=email, status=status, preferences=preferences)


def _row_status(text: str, *, confirmed: bool) -> SubscriberStatus | None:
    """The row's own status may only make an import more careful, never less."""
    if not text:
        return None
    try:
        status = SubscriberStatus(text.lower())
    except ValueError:
        choices = ", ".join(s.value for s in SubscriberStatus)
        raise SubscriberError(f"unknown status {text!r} (one of {choices})") from None
    if status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        # Mailing someone who left, or an address that bounces, must never
        # happen by way of a bulk import.
        raise SubscriberError(f"status is {status.value}: not subscribed again by an import")
    if status == SubscriberStatus.PENDING and confirmed:
        raise SubscriberError("status is pending (never confirmed): import it without --confirmed")
    return status


def _known_addresses(session: Session, addresses: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(addresses), IN_LIST_CHUNK):
        chunk = addresses[start : start + IN_LIST_CHUNK]
        # one_of: a single array parameter on PostgreSQL, where thousands of bound
        # parameters cost more to render and parse than the lookup itself.
        known.update(
            session.scalars(
                select(Subscriber.email).where(one_of(session, Subscriber.email, chunk))
            )
        )
    return known
