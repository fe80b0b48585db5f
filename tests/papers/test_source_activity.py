"""Each source's ingest history as ``digest status`` and ``/metrics`` show it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from digest.papers.ingest import SourceActivity, source_activity
from digest.papers.models import IngestRun
from tests.factories import NOW


def run(
    session: Session, source: str, *, ago: timedelta, error: str | None = None, new: int = 0
) -> None:
    session.add(
        IngestRun(
            source=source,
            started_at=NOW - ago - timedelta(seconds=5),
            finished_at=NOW - ago,
            new=new,
            updated=1,
            unchanged=10,
            skipped=0 if error else 2,
            signals=0,
            details={},
            error=error,
        )
    )
    session.flush()


def test_a_failed_last_run_keeps_the_last_success_and_the_counts_add_up(session: Session) -> None:
    hour = timedelta(hours=1)
    run(session, "huggingface", ago=3 * hour, new=5)
    run(session, "huggingface", ago=2 * hour, new=3)
    run(session, "huggingface", ago=hour, error="503 Service Unavailable")
    run(session, "arxiv", ago=hour, error="timed out")

    assert source_activity(session) == [
        SourceActivity("arxiv", 1, 1, 0, 1, 10, 0, NOW - hour, None),
        SourceActivity("huggingface", 3, 1, 8, 3, 30, 4, NOW - hour, NOW - 2 * hour),
    ]
