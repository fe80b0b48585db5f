"""``digest db``: the database schema."""

from __future__ import annotations

import typer

from digest.cli.context import open_runtime

db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the database schema (Alembic)."""
    from digest.db.migrate import upgrade

    runtime = open_runtime()
    upgrade(runtime.engine, revision)
    typer.echo(
        f"database at {runtime.engine.url.render_as_string(hide_password=True)} is at {revision}"
    )
