"""``digest subscribers``: the operator's view of the readers (add, list, CSV, links)."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from digest.cli.context import fail, open_database, open_runtime
from digest.subscriptions.choices import (
    DEFAULT_FREQUENCY,
    DEFAULT_PAPERS_PER_DIGEST,
    DEFAULT_SEND_HOUR,
    DEFAULT_TIMEZONE,
    MAX_PAPERS_PER_DIGEST,
    Frequency,
    SubscriberStatus,
)

if TYPE_CHECKING:
    from digest.runtime import Runtime
    from digest.subscriptions.library import ImportSummary, ParsedLibrary

subscribers_cli = typer.Typer(help="Manage subscribers.", no_args_is_help=True)


@subscribers_cli.command("add")
def subscribers_add(
    email: str,
    interests: Annotated[str, typer.Option(help="Comma-separated topics.")] = "",
    confirmed: Annotated[bool, typer.Option(help="Skip double opt-in (operator import).")] = False,
    frequency: Frequency = DEFAULT_FREQUENCY,
    send_hour: Annotated[int, typer.Option(min=0, max=23)] = DEFAULT_SEND_HOUR,
    timezone: str = DEFAULT_TIMEZONE,
    papers: Annotated[
        int, typer.Option(min=1, max=MAX_PAPERS_PER_DIGEST, help="Papers per digest.")
    ] = DEFAULT_PAPERS_PER_DIGEST,
    papers_from: Annotated[
        str | None,
        typer.Option(
            "--papers-from",
            "--library",
            help="The reader's own papers, as 'more like this': a BibTeX or RIS file, "
            "or arXiv ids/URLs (comma- or space-separated), or - for standard input.",
        ),
    ] = None,
) -> None:
    """Add a subscriber (pending until confirmed, unless --confirmed).

    A bounced address is not added again but asked to confirm again: it is pending
    until its owner follows the confirmation link mailed to it now.
    """
    from digest.clock import utcnow
    from digest.db.unit_of_work import unit_of_work
    from digest.mail.sender import SendError
    from digest.subscriptions.subscribers import (
        Notice,
        SubscriberError,
        add_subscriber,
        find_subscriber,
        request_subscription,
        validate_timezone,
    )

    # Read before anything is added: a file that cannot be read adds no one.
    library = _read_library(papers_from) if papers_from is not None else None
    runtime = open_runtime()
    again: int | None = None
    try:
        with unit_of_work(runtime.session_factory) as session:
            known = find_subscriber(session, email)
            if known is not None and known.status == SubscriberStatus.BOUNCED:
                if confirmed:
                    fail(
                        f"{known.email} bounced; add it without --confirmed to mail it a "
                        "confirmation link (double opt-in)",
                        2,
                    )
                # A fresh start, as from the form, with this command's preferences.
                request_subscription(
                    session, email=email, now=utcnow(), interests=interests, frequency=frequency
                )
                known.send_hour = send_hour
                known.timezone = validate_timezone(timezone)
                known.papers_per_digest = papers
                again = known.id
                typer.echo(f"{known.email} had bounced: pending again until confirmed")
            else:
                subscriber = add_subscriber(
                    session,
                    email=email,
                    interests=interests,
                    confirmed=confirmed,
                    frequency=frequency,
                    send_hour=send_hour,
                    timezone=timezone,
                    papers_per_digest=papers,
                    now=utcnow(),
                )
                typer.echo(f"added {subscriber.email} ({subscriber.status.value})")
    except SubscriberError as exc:
        fail(str(exc), 2)
    if library is not None:
        _import_library(runtime, email, library)
    if again is not None:
        # After the commit: the link in it confirms the pending row.
        try:
            runtime.send_notice(Notice.CONFIRM, again)
        except SendError as exc:
            fail(f"the confirmation email was not sent: {exc}", 1)
        typer.echo("confirmation email sent")


@subscribers_cli.command("library")
def subscribers_library(
    email: str,
    papers_from: Annotated[
        str,
        typer.Argument(
            metavar="FILE_OR_IDS",
            help="A BibTeX or RIS file, arXiv ids/URLs, or - for standard input.",
        ),
    ],
) -> None:
    """Add a reader's own papers as their "more like this" (as the preferences page does).

    arXiv ids not yet stored are fetched from the arXiv API; entries without one are
    matched by DOI or exact title among stored papers. Prints what was added, what
    was not found and which lines were not understood; exit code 1 when any entry
    was not found or not understood, 2 when the reader or the file is unknown.
    """
    library = _read_library(papers_from)
    summary = _import_library(open_runtime(), email, library)
    if summary.not_found or summary.problems or summary.fetch_error:
        raise typer.Exit(1)


def _read_library(papers_from: str) -> ParsedLibrary:
    from digest.subscriptions.library import MAX_UPLOAD_BYTES, decode_upload, parse_library

    if papers_from == "-":
        return parse_library(decode_upload(sys.stdin.buffer.read(MAX_UPLOAD_BYTES + 1)))
    path = Path(papers_from)
    if not path.is_file():
        # Not a file: the ids themselves ("2401.01234, hep-th/9901001").
        return parse_library(papers_from)
    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            fail(f"{papers_from} is {size:,} bytes, over the {MAX_UPLOAD_BYTES:,}-byte limit", 2)
        return parse_library(decode_upload(path.read_bytes()))
    except OSError as exc:
        fail(f"cannot read {papers_from}: {exc.strerror}", 2)


def _import_library(runtime: Runtime, email: str, library: ParsedLibrary) -> ImportSummary:
    from digest.papers.sources import SourceError

    try:
        summary = runtime.import_library(email, library)
    except LookupError:
        fail(f"no subscriber {email}", 2)
    except SourceError as exc:
        fail(str(exc), 1)
    for line in summary.lines():
        typer.echo(line)
    return summary


@subscribers_cli.command("list")
def subscribers_list(
    status: Annotated[SubscriberStatus | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List subscribers: email, status, frequency, send time, interests; a bounced
    reader's line ends with the event that bounced them (kind, code, source, date, reason)."""
    from digest.bounces.reporting import describe, last_events
    from digest.db.unit_of_work import unit_of_work
    from digest.subscriptions.subscribers import list_subscribers

    runtime = open_runtime()
    with unit_of_work(runtime.session_factory) as session:
        rows = list_subscribers(session, status=status)
        bounced = [s.id for s in rows if s.status == SubscriberStatus.BOUNCED]
        events = last_events(session, bounced)
        for s in rows:
            line = (
                f"{s.email}\t{s.status.value}\t{s.frequency.value}\t"
                f"{s.send_hour:02d}:00 {s.timezone}\t{s.interests}"
            )
            if s.id in events:
                line += f"\t{describe(events[s.id])}"
            typer.echo(line)
        typer.echo(f"{len(rows)} subscriber(s)", err=True)


@subscribers_cli.command("counts")
def subscribers_counts() -> None:
    """How many subscribers are in each status (zeros included)."""
    from digest.db.unit_of_work import unit_of_work
    from digest.subscriptions.subscribers import count_by_status

    runtime = open_runtime()
    with unit_of_work(runtime.session_factory) as session:
        counts = count_by_status(session)
    for status in SubscriberStatus:
        typer.echo(f"{status.value}\t{counts.get(status, 0)}")
    typer.echo(f"{sum(counts.values())} subscriber(s)", err=True)


@subscribers_cli.command("export")
def subscribers_export(
    status: Annotated[SubscriberStatus | None, typer.Option(help="Only this status.")] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for standard output.")
    ] = "-",
) -> None:
    """Write subscribers as CSV: a header row, then one row each ("; " joins lists)."""
    from digest.db.unit_of_work import unit_of_work
    from digest.subscriptions.csv_io import export_subscribers

    runtime = open_runtime()
    with unit_of_work(runtime.session_factory) as session, _csv_output(output) as out:
        count = export_subscribers(session, out, status=status)
    typer.echo(f"{count} subscriber(s) exported", err=True)


@contextmanager
def _csv_output(output: str) -> Iterator[TextIO]:
    if output == "-":
        yield sys.stdout
        return
    try:
        # Owner-only: the file is a list of people's addresses and interests.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}", 2)
    with open(fd, "w", encoding="utf-8", newline="") as out:
        yield out


@subscribers_cli.command("import")
def subscribers_import(
    file: Annotated[
        str, typer.Argument(help="CSV file with a header row, or - for standard input.")
    ],
    confirmed: Annotated[
        bool,
        typer.Option(
            help="The readers already opted in elsewhere: import them as active "
            "(a row whose status is paused stays paused)."
        ),
    ] = False,
) -> None:
    """Add subscribers from CSV in the shape `export` writes; only `email` is required.

    Addresses already subscribed are skipped and never changed. Invalid rows are
    reported by line number and skipped; the other rows are imported together.
    Rows are imported as pending unless --confirmed, and no confirmation email is
    sent to pending readers: they stay pending until they subscribe from the site.
    Rows whose status is unsubscribed or bounced are refused, and so are pending
    rows with --confirmed. created_at and confirmed_at are not read: both are the
    time of the import. Exit code 1 when some rows were invalid.
    """
    from sqlalchemy.exc import IntegrityError

    from digest.clock import utcnow
    from digest.db.unit_of_work import unit_of_work
    from digest.subscriptions.csv_io import import_subscribers
    from digest.subscriptions.subscribers import SubscriberError

    text = _read_csv_text(file)
    session_factory = open_database()
    try:
        with unit_of_work(session_factory) as session:
            result = import_subscribers(
                session, io.StringIO(text, newline=""), confirmed=confirmed, now=utcnow()
            )
    except SubscriberError as exc:
        fail(str(exc), 2)
    except IntegrityError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        fail(
            # Known addresses are skipped, even one added during the import: this is
            # a constraint the validation did not foresee.
            f"nothing was imported: the database refused a row ({reason})"
        )
    for problem in result.invalid:
        typer.echo(f"line {problem.line}: {problem.reason}", err=True)
    typer.echo(result.summary())
    # After the unit of work: raising inside it would roll the valid rows back.
    if result.invalid:
        raise typer.Exit(1)


def _read_csv_text(file: str) -> str:
    try:
        if file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as f:
                data = f.read()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    try:
        # utf-8-sig: spreadsheet programs start "CSV UTF-8" with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{file} is not UTF-8 (byte {exc.start}): save it as CSV UTF-8", 2)


@subscribers_cli.command("links")
def subscribers_links(email: str) -> None:
    """Print a subscriber's preferences and unsubscribe links (for support requests)."""
    from digest.db.unit_of_work import unit_of_work
    from digest.subscriptions.subscribers import (
        SubscriberError,
        find_subscriber,
        normalise_email,
    )

    runtime = open_runtime()
    links = runtime.links
    try:
        with unit_of_work(runtime.session_factory) as session:
            subscriber = find_subscriber(session, email)
            if subscriber is None:
                fail(f"no subscriber with the address {normalise_email(email)}", 2)
            typer.echo(f"{subscriber.email} ({subscriber.status.value})", err=True)
            typer.echo(f"preferences  {links.preferences(subscriber)}")
            typer.echo(f"unsubscribe  {links.unsubscribe(subscriber).https_url}")
    except SubscriberError as exc:
        fail(str(exc), 2)
