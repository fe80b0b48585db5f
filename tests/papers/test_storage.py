from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.papers.models import Paper, PaperSource, PopularitySignal
from digest.papers.sources import DeferredRecord, PaperRecord
from digest.papers.storage import store_papers
from tests.factories import NOW


def record(n: int, **fields: object) -> PaperRecord:
    values: dict[str, object] = {
        "canonical_id": f"arxiv:2611.{n:05d}",
        "title": f"Title {n}",
        "abstract": f"Abstract {n}",
        "links": {"abs": f"https://arxiv.org/abs/2611.{n:05d}"},
    }
    values.update(fields)
    return PaperRecord(**values)  # type: ignore[arg-type]


def test_new_papers_are_stored_once_and_unchanged_ones_are_not_rewritten(session: Session) -> None:
    first = store_papers(session, [record(1), record(2)], source="test", now=NOW)
    again = store_papers(
        session, [record(1), record(2)], source="test", now=NOW + timedelta(hours=1)
    )

    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert session.scalar(select(func.count()).select_from(Paper)) == 2
    stored = session.scalar(select(Paper).where(Paper.canonical_id == "arxiv:2611.00001"))
    assert stored is not None
    assert stored.updated_at == NOW  # untouched by the no-change re-ingest


def test_a_changed_paper_is_updated_in_place(session: Session) -> None:
    store_papers(session, [record(1)], source="test", now=NOW)
    counts = store_papers(
        session, [record(1, abstract="A revised abstract")], source="test", now=NOW
    )
    assert (counts.new, counts.updated) == (0, 1)
    papers = session.scalars(select(Paper)).all()
    assert [p.abstract for p in papers] == ["A revised abstract"]


def test_a_title_of_zero_is_a_title(session: Session) -> None:
    store_papers(session, [record(1, title="0")], source="test", now=NOW)
    assert session.scalar(select(Paper.title)) == "0"


def test_duplicates_within_one_feed_become_one_paper(session: Session) -> None:
    counts = store_papers(
        session, [record(1, title="old"), record(1, title="new")], source="test", now=NOW
    )
    assert counts.new == 1
    assert session.scalar(select(Paper.title)) == "new"


def test_popularity_is_observed_over_time_only_when_it_moves(session: Session) -> None:
    store_papers(session, [record(1, upvotes=3)], source="hf", now=NOW)
    store_papers(session, [record(1, upvotes=3)], source="hf", now=NOW + timedelta(hours=1))
    store_papers(session, [record(1, upvotes=9)], source="hf", now=NOW + timedelta(hours=2))

    observed = session.execute(
        select(PopularitySignal.upvotes, PopularitySignal.observed_at).order_by(
            PopularitySignal.observed_at
        )
    ).all()
    assert [(u, t) for u, t in observed] == [(3, NOW), (9, NOW + timedelta(hours=2))]


def test_many_papers_are_stored_in_chunks(session: Session) -> None:
    counts = store_papers(session, (record(n) for n in range(1, 1201)), source="test", now=NOW)
    assert counts.new == 1200
    assert session.scalar(select(func.count()).select_from(Paper)) == 1200


def test_hugging_face_and_arxiv_records_of_one_work_merge(session: Session) -> None:
    arxiv = record(
        1,
        authors=("Ada Lovelace", "Alan Turing"),
        categories=("cs.LG", "cs.AI"),
        version=1,
        links={"abs": "https://arxiv.org/abs/2611.00001"},
    )
    hf = PaperRecord(
        canonical_id="arxiv:2611.00001",
        title="Title 1",
        links={
            "hf": "https://huggingface.co/papers/2611.00001",
            "github": "https://github.com/x/y",
        },
        keywords=("diffusion",),
        upvotes=42,
    )
    store_papers(session, [arxiv], source="arxiv-rss", now=NOW)
    counts = store_papers(session, [hf], source="huggingface", now=NOW)

    assert (counts.new, counts.updated, counts.signals) == (0, 1, 1)
    [paper] = session.scalars(select(Paper)).all()
    # What only one source knew is kept; links from both are there.
    assert paper.categories == ["cs.LG", "cs.AI"]
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.abstract == "Abstract 1"
    assert paper.keywords == ["diffusion"]
    assert set(paper.links) == {"abs", "hf", "github"}
    assert session.scalar(select(func.count()).select_from(PaperSource)) == 2


def test_an_older_version_never_overwrites_a_newer_one(session: Session) -> None:
    store_papers(session, [record(1, title="Second version", version=2)], source="a", now=NOW)
    older = store_papers(
        session, [record(1, title="First version", version=1)], source="b", now=NOW
    )
    newer = store_papers(
        session, [record(1, title="Third version", version=3)], source="a", now=NOW
    )

    assert older.updated == 0 and newer.updated == 1
    paper = session.scalars(select(Paper)).one()
    assert (paper.title, paper.version) == ("Third version", 3)


def test_latex_is_kept_raw_and_shown_as_unicode(session: Session) -> None:
    store_papers(
        session,
        [record(1, title=r"$\alpha$-decay in $\mathbb{Z}_p$", abstract=r"By R\'emy, $x\to\infty$")],
        source="test",
        now=NOW,
    )
    paper = session.scalars(select(Paper)).one()
    assert paper.title == r"$\alpha$-decay in $\mathbb{Z}_p$"
    assert paper.shown_title == "α-decay in ℤₚ"
    assert paper.shown_abstract == "By Rémy, x→∞"


def test_a_changed_abstract_changes_what_is_shown(session: Session) -> None:
    store_papers(session, [record(1, abstract=r"$\beta$ first")], source="test", now=NOW)
    store_papers(session, [record(1, abstract=r"$\gamma$ second")], source="test", now=NOW)
    paper = session.scalars(select(Paper)).one()
    assert paper.shown_abstract == "γ second"
    # Text without LaTeX is not stored twice.
    store_papers(session, [record(1, abstract="plain words")], source="test", now=NOW)
    session.refresh(paper)
    assert (paper.display_abstract, paper.shown_abstract) == ("", "plain words")


def test_a_deferred_entry_is_completed_only_when_new_or_changed(session: Session) -> None:
    completed: list[str] = []

    def deferred(n: int, fingerprint: str, **fields: object) -> DeferredRecord:
        def complete() -> PaperRecord:
            completed.append(f"{n}:{fingerprint}")
            return record(n, **fields)

        return DeferredRecord(record(n).canonical_id, fingerprint, complete)

    first = store_papers(session, [deferred(1, "a"), deferred(2, "b")], source="rss", now=NOW)
    again = store_papers(
        session,
        [deferred(1, "a"), deferred(2, "b2", title="Title 2, revised")],
        source="rss",
        now=NOW,
    )

    assert (first.new, again.unchanged, again.updated) == (2, 1, 1)
    assert completed == ["1:a", "2:b", "2:b2"]
    titles = session.scalars(select(Paper.title).order_by(Paper.canonical_id)).all()
    assert titles == ["Title 1", "Title 2, revised"]
