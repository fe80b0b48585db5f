"""The few statements whose SQL differs between PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert
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
