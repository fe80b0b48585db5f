"""The ``digest`` command: every subcommand registered on one Typer app."""

from __future__ import annotations

import logging
import sys

import typer

from digest.cli import demo, inbound, ingest, preview, services, status
from digest.cli.db import db_cli
from digest.cli.dkim import dkim_cli
from digest.cli.subscribers import subscribers_cli

# Arguments after the command go to celery unchanged.
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

cli = typer.Typer(
    help="Trending research papers in your inbox.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(db_cli, name="db")
cli.add_typer(subscribers_cli, name="subscribers")
cli.add_typer(dkim_cli, name="dkim")
cli.command()(ingest.ingest)
cli.command()(preview.preview)
cli.command("send-due")(services.send_due)
cli.command()(status.status)
cli.command()(demo.demo)
cli.command()(services.web)
cli.command()(services.serve)
cli.command()(inbound.inbound)
cli.command(context_settings=_PASS_THROUGH)(services.worker)
cli.command(context_settings=_PASS_THROUGH)(services.beat)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli()
    except Exception as exc:
        # Only a command that reached the database can raise this: SQLAlchemy is loaded.
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        message = str(exc.orig or exc).strip().splitlines()[0]
        typer.echo(f"error: cannot reach the database: {message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
