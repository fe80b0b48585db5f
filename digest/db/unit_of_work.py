"""The unit of work.

Domain functions receive a ``Session`` and never commit. Whoever starts a unit of
work (a CLI command, a web request, a Celery task) uses :func:`unit_of_work`, which
commits once at the end and runs callbacks registered with :func:`after_commit`
only when that commit succeeded. Tasks are published from such callbacks, so a
worker never sees a task whose rows are not committed yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

_AFTER_COMMIT_KEY = "digest.after_commit"


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once the session's current transaction has committed."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(_AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_transaction_end")
def _drop_after_commit(session: Session, transaction: Any) -> None:
    # Reached after a commit has already run the callbacks, or after a rollback of
    # the outermost transaction: either way nothing pending may leak into the next.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT_KEY, None)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit at the end, roll back on error."""
    with factory() as session, session.begin():
        yield session
