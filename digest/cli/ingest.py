"""``digest ingest``: fetch papers from the sources and store them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.context import fail, open_runtime

if TYPE_CHECKING:
    from rich.progress import TaskID


def ingest(
    source: Annotated[
        str | None,
        typer.Option(help="Ingest only this source: a configured name, a feed URL or a path."),
    ] = None,
) -> None:
    """Fetch papers from the configured sources and store them."""
    from config.sources import SourceConfigError

    runtime = open_runtime()
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
