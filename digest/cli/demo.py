"""``digest demo``: the whole pipeline offline (see :mod:`digest.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import load_settings


def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database and mail folder [default: DIGEST_DATA_DIR, i.e. data/]."),
    ] = None,
) -> None:
    """Run the whole pipeline offline: sample papers, SQLite, local SMTP sink."""
    from digest.demo import demo_settings, run_demo

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
