from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from digest.db.base import Base
from digest.db.engine import make_engine
from digest.db.migrate import alembic_config, upgrade
from tests.services import fresh_postgres_database


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


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stages.db'}"
    else:
        with fresh_postgres_database("digest_migration") as url:
            yield url


def test_skip_reasons_written_into_last_error_move_to_their_column(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        upgrade(engine, "0005")
        now = datetime(2026, 11, 21, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO subscribers (id, email, status, interests, frequency, weekly_day,"
                    " send_hour, timezone, papers_per_digest, token_version, created_at,"
                    " followed_authors, categories, excluded_keywords, confirm_nonce)"
                    " VALUES (1, 'a@example.org', 'active', '', 'daily', 0, 7, 'UTC', 5, 1,"
                    " :now, '[]', '[]', '[]', 0)"
                ),
                {"now": now},
            )
            for number, (state, error) in enumerate(
                [
                    ("skipped", "subscriber is unsubscribed"),
                    ("skipped", "nothing relevant enough today"),
                    ("skipped", "something else entirely"),
                    ("failed", "550 no such user"),
                    ("queued", None),
                ]
            ):
                connection.execute(
                    text(
                        "INSERT INTO deliveries (subscriber_id, edition, status, attempts,"
                        " last_error, created_at) VALUES (1, :edition, :status, 0, :error, :now)"
                    ),
                    {
                        "edition": f"2026-11-{number + 10}",
                        "status": state,
                        "error": error,
                        "now": now,
                    },
                )

        upgrade(engine)

        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT status, skip_reason, note, last_error FROM deliveries ORDER BY id")
            ).all()
        assert [tuple(row) for row in rows] == [
            ("skipped", "unsubscribed", "subscriber is unsubscribed", None),
            ("skipped", "nothing_relevant", "nothing relevant enough today", None),
            ("skipped", "other", "something else entirely", None),
            ("failed", None, None, "550 no such user"),
            ("queued", None, None, None),
        ]
        # The new states pass the CHECK constraint; nonsense still does not.
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE deliveries SET status = 'sending' WHERE status = 'queued'")
            )
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text("UPDATE deliveries SET status = 'lost' WHERE status = 'sending'")
            )
    finally:
        engine.dispose()
