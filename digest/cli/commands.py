"""The ``digest`` command line: each command is one unit of work."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from config.settings import Settings
from digest.clock import utcnow
from digest.db.unit_of_work import unit_of_work
from digest.subscriptions.csv_io import export_subscribers, import_subscribers
from digest.subscriptions.models import (
    DEFAULT_FREQUENCY,
    DEFAULT_PAPERS_PER_DIGEST,
    DEFAULT_SEND_HOUR,
    DEFAULT_TIMEZONE,
    MAX_PAPERS_PER_DIGEST,
    Frequency,
    SubscriberStatus,
)
from digest.subscriptions.subscribers import (
    SubscriberError,
    add_subscriber,
    count_by_status,
    find_subscriber,
    list_subscribers,
    normalise_email,
)

if TYPE_CHECKING:
    from rich.progress import TaskID

    from digest.runtime import Runtime
    from workers.app import DigestCelery

cli = typer.Typer(
    help="Trending research papers in your inbox.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
subscribers_cli = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(subscribers_cli, name="subscribers")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}")


def _runtime() -> Runtime:
    from config.ranking import RankingConfigError
    from digest.runtime import Runtime

    runtime = Runtime(load_settings())
    try:
        # Read now: a bad file is one line here, not a traceback at the first send.
        runtime.ranking_config  # noqa: B018
    except RankingConfigError as exc:
        fail(str(exc), 2)
    return runtime


def _celery() -> DigestCelery:
    # Imported late: building the Celery app is not needed by most commands.
    from workers.app import create_celery

    return create_celery(load_settings())


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the database schema (Alembic)."""
    from digest.db.migrate import upgrade

    runtime = _runtime()
    upgrade(runtime.engine, revision)
    typer.echo(
        f"database at {runtime.engine.url.render_as_string(hide_password=True)} is at {revision}"
    )


@cli.command()
def ingest(
    source: Annotated[
        str | None,
        typer.Option(help="Ingest only this source: a configured name, a feed URL or a path."),
    ] = None,
) -> None:
    """Fetch papers from the configured sources and store them."""
    from config.sources import SourceConfigError

    runtime = _runtime()
    try:
        with _ingest_progress() as progress:
            summaries = runtime.run_ingest(source, progress=progress)
    except LookupError as exc:
        fail(str(exc.args[0]), 2)
    except SourceConfigError as exc:
        fail(str(exc), 2)
    for summary in summaries:
        typer.echo(summary.line())
    if any(s.error for s in summaries):
        raise typer.Exit(1)


@contextmanager
def _ingest_progress() -> Iterator[Callable[[str, int], None] | None]:
    """A progress line per source on a terminal; nothing when output is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(source: str, read: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(source)
            bar.update(tasks[source], description=f"{source}: {read:,} entries read")

        yield update


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
) -> None:
    """Add a subscriber (pending until confirmed, unless --confirmed)."""
    runtime = _runtime()
    try:
        with unit_of_work(runtime.session_factory) as session:
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


@subscribers_cli.command("list")
def subscribers_list(
    status: Annotated[SubscriberStatus | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List subscribers: email, status, frequency, send time, interests."""
    runtime = _runtime()
    with unit_of_work(runtime.session_factory) as session:
        rows = list_subscribers(session, status=status)
        for s in rows:
            typer.echo(
                f"{s.email}\t{s.status.value}\t{s.frequency.value}\t"
                f"{s.send_hour:02d}:00 {s.timezone}\t{s.interests}"
            )
        typer.echo(f"{len(rows)} subscriber(s)", err=True)


@subscribers_cli.command("counts")
def subscribers_counts() -> None:
    """How many subscribers are in each status (zeros included)."""
    runtime = _runtime()
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
    runtime = _runtime()
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
    text = _read_csv_text(file)
    runtime = _runtime()
    try:
        with unit_of_work(runtime.session_factory) as session:
            result = import_subscribers(
                session, io.StringIO(text, newline=""), confirmed=confirmed, now=utcnow()
            )
    except SubscriberError as exc:
        fail(str(exc), 2)
    except IntegrityError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        fail(
            f"nothing was imported: the database refused a row ({reason}); "
            "an address may have subscribed meanwhile, run the import again"
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
    runtime = _runtime()
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


@cli.command()
def preview(
    interests: Annotated[str, typer.Option(help="Free-text interests, comma separated.")] = "",
    authors: Annotated[list[str] | None, typer.Option("--authors", help="Followed author.")] = None,
    categories: Annotated[
        list[str] | None, typer.Option("--categories", help="arXiv category (cs.CL).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Keyword to drop.")] = None,
    email: Annotated[
        str | None, typer.Option(help="Rank for this subscriber instead (their profile).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Candidates first seen from this date (YYYY-MM-DD).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=500)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Rank the papers in the database for an ad-hoc profile or a subscriber."""
    import json
    from datetime import UTC, datetime

    from digest.ranking.ranker import Profile, profile_of, sent_paper_ids

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--since {since!r} is not a date like 2026-11-20", 2)
    runtime = _runtime()
    now = utcnow()
    with unit_of_work(runtime.session_factory) as session:
        sent: set[int] = set()
        if email is not None:
            try:
                subscriber = find_subscriber(session, email)
            except SubscriberError as exc:
                fail(str(exc), 2)
            if subscriber is None:
                fail(f"no subscriber with the address {normalise_email(email)}", 2)
            profile = profile_of(session, subscriber)
            sent = sent_paper_ids(session, subscriber.id)
        else:
            profile = Profile(
                interests=interests,
                authors=tuple(authors or ()),
                categories=tuple(categories or ()),
                excluded=tuple(exclude or ()),
            )
        profile = Profile(**{**profile.__dict__, "limit": top})
        selection = runtime.ranker.rank(session, profile, now=now, sent=sent, since=start)
    picks = [
        {
            "id": pick.paper.canonical_id,
            "title": pick.paper.shown_title,
            "score": round(pick.score, 4),
            "relevance": None if pick.relevance is None else round(pick.relevance, 4),
            "reason": pick.reason,
            "url": pick.paper.url,
        }
        for pick in selection.picks
    ]
    if as_json:
        typer.echo(json.dumps({"picks": picks, "note": selection.note}, ensure_ascii=False))
        return
    if selection.note:
        typer.echo(selection.note, err=True)
    for number, item in enumerate(picks, 1):
        typer.echo(f"{number:>3}. {item['id']}  {item['score']:.3f}  {item['title']}")
        typer.echo(f"     {item['reason']}")


@cli.command("send-due")
def send_due() -> None:
    """Send every digest that is due now (through the task queue, or in-process)."""
    app = _celery()
    claimed = app.tasks["digest.dispatch_due"].delay()
    if app.in_process:
        typer.echo(f"{claimed.get()} digest(s) were due and have been processed")
    else:
        typer.echo("dispatch queued; a worker sends the due digests")


@cli.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database and mail folder [default: DIGEST_DATA_DIR, i.e. data/]."),
    ] = None,
) -> None:
    """Run the whole pipeline offline: sample papers, SQLite, local SMTP sink."""
    from digest.cli.demo import demo_settings, run_demo

    settings = load_settings()
    # The same folder as `digest web` by default, so the preview's links work there.
    result = run_demo(demo_settings(settings, data_dir or settings.data_dir))
    for summary in result.ingest:
        typer.echo(f"ingest  {summary.line()}")
    for note in result.notes:
        typer.echo(f"note    {note}")
    delivery = result.delivery
    if delivery is not None:
        typer.echo(
            f"digest  {delivery.edition}: {delivery.status}, {len(delivery.titles)} papers"
            + (f", Message-ID {delivery.message_id}" if delivery.message_id else "")
            + (f" ({delivery.note})" if delivery.note else "")
        )
        for title in delivery.titles:
            typer.echo(f"        - {title}")
    if result.eml_path:
        typer.echo(f"email   {result.eml_path.resolve()}")
    if result.html_path:
        typer.echo(f"preview {result.html_path.resolve()}  (open in a browser)")


@cli.command()
def web(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes; one per core for the spike after a send.")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the web app: subscribe, confirm, preferences and unsubscribe pages."""
    import uvicorn

    # Checked here for a one-line error; each worker process reads the same environment.
    load_settings()
    uvicorn.run(
        "digest.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        # Behind a proxy on this host, the client address (for rate limits) is the reader's.
        proxy_headers=True,
    )


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (extra arguments go to celery)."""
    app = _celery()
    if app.in_process:
        fail(
            "DIGEST_BROKER_URL is not set: a worker needs a broker (e.g. redis://127.0.0.1:6379/0)"
        )
    app.worker_main(["worker", "--loglevel=INFO", *ctx.args])


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def beat(ctx: typer.Context) -> None:
    """Run Celery beat, the scheduler (extra arguments go to celery)."""
    app = _celery()
    if app.in_process:
        fail("DIGEST_BROKER_URL is not set: beat needs a broker (e.g. redis://127.0.0.1:6379/0)")
    schedule = Path(app.settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}", *ctx.args])


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli()
    except OperationalError as exc:
        message = str(exc.orig or exc).strip().splitlines()[0]
        typer.echo(f"error: cannot reach the database: {message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
