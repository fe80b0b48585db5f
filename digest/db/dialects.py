"""The few statements whose SQL differs between PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import orjson
import psycopg
from sqlalchemy import JSON, ColumnElement, Insert, Table, any_, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db.base import Base
from digest.db.limits import IN_LIST_CHUNK


def backend_insert(session: Session, model: type[Base]) -> Any:
    """The session's backend's ``INSERT`` (with its ``ON CONFLICT`` clauses)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database backend: {dialect}")


def insert_ignoring_conflicts(
    session: Session, model: type[Base], conflict_columns: Sequence[str]
) -> Insert:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the session's backend."""
    ignoring: Insert = backend_insert(session, model).on_conflict_do_nothing(
        index_elements=list(conflict_columns)
    )
    return ignoring


def one_of(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``, as one array parameter on PostgreSQL.

    ``IN`` renders one bound parameter per value; for the thousands of ids of a feed
    chunk, compiling and splitting that query costs more than running it.
    """
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def insert_new_rows(
    session: Session,
    model: type[Base],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict_column: str,
) -> list[tuple[int, Any]]:
    """Insert ``rows`` (values in ``columns`` order), skipping those whose
    ``conflict_column`` value exists; ``(id, value)`` of each row inserted.

    See :func:`insert_absent_rows`, which this follows with one lookup of the ids.
    """
    inserted = insert_absent_rows(session, model, columns, rows, conflict_column=conflict_column)
    if not inserted:
        return []
    key = _table(model).c[conflict_column]
    found = session.execute(
        select(_table(model).c.id, key).where(one_of(session, key, inserted))
    ).all()
    return [(row_id, value) for row_id, value in found]


def insert_absent_rows(
    session: Session,
    model: type[Base],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict_column: str,
) -> set[Any]:
    """Insert ``rows`` (values in ``columns`` order), skipping those whose
    ``conflict_column`` value exists; the ``conflict_column`` values inserted.

    The caller has looked the values up already, so a conflict means a concurrent
    writer got there first: rare. PostgreSQL therefore gets the rows by ``COPY``
    straight into the table (several times faster than a multi-row ``INSERT`` for
    feeds of thousands of papers), and only when that meets a conflict, through a
    staging table with ``INSERT … ON CONFLICT DO NOTHING``. SQLite inserts them
    with ``INSERT OR IGNORE``.
    """
    if not rows:
        return set()
    table = _table(model)
    position = list(columns).index(conflict_column)
    values = [row[position] for row in rows]
    if session.get_bind().dialect.name == "postgresql":
        try:
            with session.begin_nested():
                copy_rows(session, model, columns, rows)
            return set(values)
        except psycopg.errors.UniqueViolation:
            return _insert_through_staging(session, table, columns, rows, conflict_column)
    key = table.c[conflict_column]
    existing: set[Any] = set()
    for start in range(0, len(values), IN_LIST_CHUNK):
        # One bound parameter per value: SQLite refuses more than 32,766 in a statement.
        chunk = values[start : start + IN_LIST_CHUNK]
        existing.update(session.scalars(select(key).where(key.in_(chunk))))
    session.execute(
        insert_ignoring_conflicts(session, model, [conflict_column]),
        [dict(zip(columns, row, strict=True)) for row in rows],
    )
    return set(values) - existing


def copy_rows(
    session: Session, model: type[Base], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) as fast as the backend allows."""
    if not rows:
        return
    table = _table(model)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    with _cursor(session) as cursor:
        _copy(cursor, table, table.name, columns, rows)


def _insert_through_staging(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict_column: str,
) -> set[Any]:
    staging = f"incoming_{table.name}"
    names = ", ".join(columns)
    with _cursor(session) as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
            f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {staging}")
        _copy(cursor, table, staging, columns, rows)
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
            f"ON CONFLICT ({conflict_column}) DO NOTHING RETURNING {conflict_column}"
        )
        return {value for (value,) in cursor.fetchall()}


def _copy(
    cursor: Any,
    table: Table,
    target: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    with cursor.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = _json(row[i])
            copy.write_row(row)


def _json(value: Any) -> str | None:
    # orjson: ~10x json.dumps, and these are most of what a paper row holds.
    return None if value is None else orjson.dumps(value).decode()


def _cursor(session: Session) -> Any:
    # The session's own connection, so the rows are part of its transaction.
    return session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table
