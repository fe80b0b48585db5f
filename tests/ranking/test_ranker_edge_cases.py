"""Edge cases of the ranking found in review; each test failed before its fix."""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

import digest.ranking.candidates as candidates_module
from config.ranking import load_ranking_config
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.papers.models import Paper
from digest.ranking.phrases import PhraseTable
from digest.ranking.profiles import Profile
from digest.ranking.ranker import TrendingRanker
from digest.ranking.selection import select_in_chunks
from tests.factories import NOW, make_paper, make_subscriber

CONFIG = load_ranking_config()


def ranker() -> TrendingRanker:
    return TrendingRanker(window=timedelta(days=7), config=CONFIG, embedder=None)


def _send(session: Session, subscriber_id: int, paper_ids: list[int], edition: str) -> None:
    delivery = Delivery(subscriber_id=subscriber_id, edition=edition, status=DeliveryStatus.SENT)
    delivery.papers = [DeliveryPaper(paper_id=i, position=k) for k, i in enumerate(paper_ids)]
    session.add(delivery)
    session.flush()


def test_excluded_keyword_cache_eviction_crashes_a_batch(session: Session) -> None:
    # A long-running worker: earlier batches this hour cached some excluded keywords;
    # a later batch that mixes one seen keyword with many new ones crosses the cap.
    make_paper(session, title="Sparse attention", upvotes=5)
    r = ranker()
    r.rank(session, Profile(excluded=("blockchain",)), now=NOW)
    batch = [Profile(excluded=("blockchain",))] + [
        Profile(excluded=(f"keyword{i}",)) for i in range(candidates_module.MAX_CACHED_CLOSENESS)
    ]
    selections = r.rank_many(session, batch, now=NOW, sent=[set() for _ in batch])
    assert len(selections) == len(batch)


def test_closeness_cache_eviction_silently_drops_a_readers_feedback(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same eviction as above for "more like this": the cap is lowered so that a
    # handful of papers stands for the 5,000 a busy process reaches.
    monkeypatch.setattr(candidates_module, "MAX_CACHED_CLOSENESS", 2)
    liked = make_paper(
        session,
        title="Graph neural networks for molecules",
        abstract="Message passing graph networks predict molecule properties.",
        first_seen_at=NOW - timedelta(days=20),
    )
    similar = make_paper(
        session,
        title="Equivariant graph networks for molecule generation",
        abstract="Graph message passing generates molecules.",
        upvotes=1,
    )
    make_paper(session, title="Robots", abstract="Robot arms learn to grasp cups.", upvotes=300)
    others = [
        make_paper(
            session,
            title=f"Old topic {w}",
            abstract=f"About {w}.",
            first_seen_at=NOW - timedelta(days=30),
        )
        for w in ("weather", "compilers")
    ]
    r = ranker()
    fan = Profile(more_like=(liked.id,), limit=1)
    first = r.rank(session, fan, now=NOW)
    assert [p.paper.id for p in first.picks] == [similar.id]
    # The next batch: the same reader plus readers who liked two other papers.
    batch = [fan, Profile(more_like=(others[0].id,)), Profile(more_like=(others[1].id,))]
    again = r.rank_many(session, batch, now=NOW, sent=[set() for _ in batch])
    assert [p.paper.id for p in again[0].picks] == [similar.id]


def test_top_phrase_matches_already_sent_starve_the_digest(session: Session) -> None:
    # A popular interest: its best 50 matches were sent over the week; three
    # relevant, unsent papers remain, and the reader gets none of them.
    keep = CONFIG.selection.phrase_candidates
    strong = [
        make_paper(session, title=f"Diffusion {k}", abstract="Diffusion.", upvotes=10)
        for k in range(keep)
    ]
    weaker = [
        make_paper(
            session,
            title=f"Video generation method {k}",
            abstract="A diffusion model generates frames.",
            upvotes=10,
        )
        for k in range(3)
    ]
    reader = make_subscriber(session, interests="diffusion", papers_per_digest=3)
    _send(session, reader.id, [p.id for p in strong], "2026-11-20")
    # The three are relevant enough on their own (above min_relevance).
    candidates = ranker().candidates(session, now=NOW)
    table = PhraseTable(candidates, None)
    table.ensure(["diffusion"])
    row = table.matched[table.index["diffusion"]]
    assert all(row[candidates.position[p.id]] >= CONFIG.selection.min_relevance for p in weaker)
    picks = ranker().pick(session, reader, now=NOW).picks
    assert {p.paper.id for p in picks} == {p.id for p in weaker}


def test_reason_claims_more_like_this_for_a_paper_unrelated_to_the_liked_one(
    session: Session,
) -> None:
    liked = make_paper(
        session,
        title="Robot arms grasp cups",
        abstract="Robot grasping of cups.",
        first_seen_at=NOW - timedelta(days=20),
    )
    match = make_paper(
        session,
        title="Graph networks for molecules",
        abstract="Message passing networks predict molecule properties.",
        upvotes=3,
    )
    profile = Profile(interests="graph neural networks", more_like=(liked.id,), limit=1)
    picks = ranker().rank(session, profile, now=NOW).picks
    assert [p.paper.id for p in picks] == [match.id]
    assert "asked more of" not in picks[0].reason


def test_a_near_duplicate_of_a_paper_already_sent_is_sent_again(session: Session) -> None:
    text = "We propose a sparse mixture of experts router that balances load across experts."
    v1 = make_paper(session, title="Balanced routing for sparse experts", abstract=text, upvotes=9)
    v2 = make_paper(session, title="Balanced routing for sparse experts", abstract=text, upvotes=8)
    other = make_paper(session, title="Protein folding", abstract="Folding proteins.", upvotes=1)
    reader = make_subscriber(session, papers_per_digest=3)
    _send(session, reader.id, [v1.id], "2026-11-20")
    picks = [p.paper.id for p in ranker().pick(session, reader, now=NOW).picks]
    assert v2.id not in picks, picks
    assert other.id in picks


@pytest.mark.parametrize("interests", ["none", "-", "n/a, ...", "IT"])
def test_interests_that_are_only_stop_words_or_punctuation_get_no_digest(
    session: Session, interests: str
) -> None:
    make_paper(session, title="Sparse attention", upvotes=50)
    empty = ranker().rank(session, Profile(interests="", limit=3), now=NOW)
    assert len(empty.picks) == 1
    selection = ranker().rank(session, Profile(interests=interests, limit=3), now=NOW)
    # The reader said nothing the ranker can use: they should be treated like an
    # empty interests field (the trending list), not skipped every day.
    assert len(selection.picks) == 1, selection.note


def test_decomposed_unicode_interest_matches_the_composed_title(session: Session) -> None:
    paper = make_paper(session, title="Réseaux de neurones pour la physique", upvotes=3)
    typed = unicodedata.normalize("NFD", "réseaux")
    picks = ranker().rank(session, Profile(interests=typed), now=NOW).picks
    assert [p.paper.id for p in picks] == [paper.id]


def test_decomposed_unicode_excluded_keyword_is_honoured(session: Session) -> None:
    make_paper(session, title="Réseaux de neurones", upvotes=300)
    kept = make_paper(session, title="Sparse attention", upvotes=3)
    typed = unicodedata.normalize("NFD", "réseaux")
    picks = ranker().rank(session, Profile(excluded=(typed,)), now=NOW).picks
    assert [p.paper.id for p in picks] == [kept.id]


def test_select_in_chunks_ignores_more_like_for_papers_outside_the_window(
    session: Session,
) -> None:
    liked = make_paper(
        session,
        title="Graph neural networks for molecules",
        abstract="Message passing graph networks predict molecule properties.",
        first_seen_at=NOW - timedelta(days=20),
    )
    similar = make_paper(
        session,
        title="Equivariant graph networks for molecule generation",
        abstract="Graph message passing generates molecules.",
        upvotes=1,
    )
    make_paper(session, title="Robots", abstract="Robot arms learn to grasp cups.", upvotes=300)
    r = ranker()
    profile = Profile(more_like=(liked.id,), limit=1)
    alone = [p.paper.id for p in r.rank(session, profile, now=NOW).picks]
    assert alone == [similar.id]
    candidates = ranker().candidates(session, now=NOW)  # a fresh process's candidates
    reference = candidates.reference_rows([session.get_one(Paper, liked.id)], None)
    [(_, chunk)] = list(
        select_in_chunks(
            candidates, [profile], feedback_rows={liked.id: reference[0]}, chunk=1, workers=2
        )
    )
    assert [candidates.papers[c.position].id for c in chunk.of(0)] == alone
