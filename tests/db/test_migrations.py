from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from digest.db.base import Base
from digest.db.migrate import alembic_config


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_run_down_and_up_again(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    # A separate database would be cleaner, but this also proves downgrade works
    # on a populated-schema database and that upgrade restores it.
    command.downgrade(alembic_config(url), "base")
    assert "papers" not in inspect(engine).get_table_names()
    command.upgrade(alembic_config(url), "head")
    assert {"papers", "subscribers", "deliveries", "delivery_papers", "popularity_signals"} <= set(
        inspect(engine).get_table_names()
    )
