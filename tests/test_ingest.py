from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.ingest import ingest
from digest.models import Paper, PopularitySignal
from digest.sources import PaperRecord, SourceError
from digest.sources.sample import SampleSource
from tests.factories import NOW


class BrokenSource:
    name = "broken"

    def fetch(self) -> Iterator[PaperRecord]:
        yield PaperRecord(canonical_id="arxiv:1", title="half a feed")
        raise SourceError("feed ended in the middle of an entry")


def test_the_shipped_sample_is_real_daily_papers_with_stable_ids() -> None:
    records = list(SampleSource().fetch())
    assert len(records) == 188
    assert len({r.canonical_id for r in records}) == len(records)
    assert all(r.canonical_id.startswith("seed:") and r.title and r.abstract for r in records)
    assert any(r.upvotes for r in records)
    # Stable: the same listing always yields the same ids.
    assert [r.canonical_id for r in records] == [r.canonical_id for r in SampleSource().fetch()]


def test_ingest_stores_the_sample_and_is_idempotent(session: Session) -> None:
    [first] = ingest(session, [SampleSource()], now=NOW)
    [second] = ingest(session, [SampleSource()], now=NOW)

    assert (first.new, first.error) == (188, None)
    assert first.signals == 55
    assert (second.new, second.updated, second.unchanged, second.signals) == (0, 0, 188, 0)
    assert session.scalar(select(func.count()).select_from(Paper)) == 188


def test_a_failing_source_loses_only_its_own_papers(session: Session, tmp_path: Path) -> None:
    sample = tmp_path / "two.json"
    papers = json.loads(Path("digest/data/sample_papers.json").read_text())["papers"][:2]
    sample.write_text(json.dumps({"papers": papers}))

    broken, good = ingest(session, [BrokenSource(), SampleSource(sample)], now=NOW)

    assert broken.error == "feed ended in the middle of an entry"
    assert good.new == 2
    canonical_ids = set(session.scalars(select(Paper.canonical_id)))
    assert canonical_ids == {p["canonical_id"] for p in papers}
    assert session.scalar(select(func.count()).select_from(PopularitySignal)) == sum(
        1 for p in papers if p.get("upvotes") is not None
    )


def test_an_unreadable_sample_is_a_source_error(session: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    [summary] = ingest(session, [SampleSource(bad)], now=NOW)
    assert summary.error is not None and "cannot read the sample papers" in summary.error
