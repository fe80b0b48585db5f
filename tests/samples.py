"""Papers as a digest shows them, from the offline sample, without a database."""

from __future__ import annotations

from datetime import date
from itertools import islice

from digest.papers.models import Paper
from digest.papers.sources.sample import SampleSource
from tests.factories import NOW


def recorded_papers(count: int) -> list[Paper]:
    """The sample's first ``count`` papers (50 at most) as recorded, ids from 1."""
    papers = [
        Paper(
            id=n,
            canonical_id=record.canonical_id,
            title=record.title,
            abstract=record.abstract,
            links=record.links,
            authors=[],
            author_count=record.author_count,
            published_on=record.published_on,
            updated_at=NOW,
        )
        for n, record in enumerate(islice(SampleSource().fetch(), count), start=1)
    ]
    assert len(papers) == count, f"the sample has {len(papers)} papers, not {count}"
    return papers


def full_papers(count: int) -> list[Paper]:
    """The sample's first ``count`` papers, each with every line a paper block can show
    (date, authors, a Discuss link): the largest digest a reader can get."""
    papers = recorded_papers(count)
    for paper in papers:
        paper.links = {"hf": f"https://huggingface.co/papers/{paper.id}", **paper.links}
        paper.author_count = paper.author_count or 12
        paper.published_on = paper.published_on or date(2026, 11, 20)
    return papers
