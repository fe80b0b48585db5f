"""What every command shares: one-line errors, settings, the runtime, the Celery app.

Command modules import the domain inside each command, not at the top: `digest --help`
then loads Typer and nothing of SQLAlchemy, pydantic or the domain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from config.settings import Settings
    from digest.runtime import Runtime
    from workers.app import DigestCelery


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    # Imported here, as every command module imports: `digest --help` stays fast.
    from pydantic import ValidationError

    from config.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}")


def open_runtime() -> Runtime:
    from digest.runtime import Runtime

    return checked(Runtime(load_settings()))


def checked(runtime: Runtime) -> Runtime:
    """``runtime`` once the files it reads are read: a bad one is one line here, not a
    traceback at the first send."""
    from config.ranking import RankingConfigError

    try:
        runtime.ranking_config  # noqa: B018
    except RankingConfigError as exc:
        fail(str(exc), 2)
    if runtime.settings.dkim_enabled:
        from digest.mail.dkim import DkimError

        try:
            # A process that cannot sign must not start: unsigned mail fails DMARC.
            runtime.dkim_signer  # noqa: B018
        except DkimError as exc:
            fail(f"DKIM: {exc}", 2)
    return runtime


def open_database() -> sessionmaker[Session]:
    """Sessions on the configured database, for a command that needs nothing else.

    The Runtime's other collaborators come with their imports (ranking, mail,
    sources: about a second, several under load), which a bulk import of a few
    seconds would otherwise spend before its first row. The engine is the one
    ``Runtime.engine`` builds.
    """
    from digest.db.engine import make_engine, make_session_factory

    return make_session_factory(make_engine(load_settings().resolved_database_url))


def open_celery() -> DigestCelery:
    # Imported late: building the Celery app is not needed by most commands.
    from workers.app import create_celery

    app = create_celery(load_settings())
    checked(app.runtime)
    return app
