from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from digest.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.ranking import PopularityRanker, interest_terms
from tests.factories import NOW, make_paper, make_subscriber

RANKER = PopularityRanker(window=timedelta(days=7))


def test_readers_without_interests_get_the_most_upvoted_papers(session: Session) -> None:
    low = make_paper(session, upvotes=3)
    high = make_paper(session, upvotes=120)
    none = make_paper(session)
    reader = make_subscriber(session, papers_per_digest=3)

    picks = RANKER.pick(session, reader, now=NOW)

    assert [p.paper.id for p in picks] == [high.id, low.id, none.id]
    assert picks[0].reason == "120 upvotes"


def test_papers_matching_interests_come_first_with_the_reason(session: Session) -> None:
    popular = make_paper(session, title="A popular paper about compilers", upvotes=500)
    match = make_paper(
        session, title="Image editing with diffusion", abstract="We edit images.", upvotes=2
    )
    reader = make_subscriber(session, interests="Diffusion, image editing", papers_per_digest=2)

    picks = RANKER.pick(session, reader, now=NOW)

    assert [p.paper.id for p in picks] == [match.id, popular.id]
    assert picks[0].reason == "matches: diffusion, image editing · 2 upvotes"


def test_phrases_match_whole_words_only(session: Session) -> None:
    make_paper(session, title="Transformers for protein folding")
    reader = make_subscriber(session, interests="former")
    assert all("matches" not in p.reason for p in RANKER.pick(session, reader, now=NOW))


def test_a_paper_already_sent_to_the_reader_is_never_picked_again(session: Session) -> None:
    sent = make_paper(session, upvotes=1000)
    fresh = make_paper(session, upvotes=1)
    reader = make_subscriber(session)
    other = make_subscriber(session)
    delivery = Delivery(subscriber_id=reader.id, edition="2026-11-20", status=DeliveryStatus.SENT)
    delivery.papers = [DeliveryPaper(paper_id=sent.id, position=0)]
    session.add(delivery)
    session.flush()

    assert [p.paper.id for p in RANKER.pick(session, reader, now=NOW)] == [fresh.id]
    # Another reader still gets it.
    assert sent.id in [p.paper.id for p in RANKER.pick(session, other, now=NOW)]


def test_papers_outside_the_window_are_not_candidates(session: Session) -> None:
    make_paper(session, first_seen_at=NOW - timedelta(days=8), upvotes=999)
    recent = make_paper(session, first_seen_at=NOW - timedelta(days=1))
    reader = make_subscriber(session)
    assert [p.paper.id for p in RANKER.pick(session, reader, now=NOW)] == [recent.id]


def test_the_digest_size_is_the_readers_preference(session: Session) -> None:
    for n in range(10):
        make_paper(session, upvotes=n)
    reader = make_subscriber(session, papers_per_digest=4)
    assert len(RANKER.pick(session, reader, now=NOW)) == 4


def test_interest_terms_are_split_and_deduplicated() -> None:
    assert interest_terms(" Diffusion; image editing,\nDIFFUSION ,, ") == [
        "diffusion",
        "image editing",
    ]


def test_excluded_keywords_keep_papers_out_whatever_their_popularity(session: Session) -> None:
    make_paper(session, title="A blockchain for model weights", upvotes=900)
    kept = make_paper(session, title="Sparse attention", upvotes=5)
    reader = make_subscriber(session, excluded_keywords=["Blockchain"], papers_per_digest=5)

    assert [p.paper.id for p in RANKER.pick(session, reader, now=NOW)] == [kept.id]


def test_followed_authors_and_categories_count_as_matches(session: Session) -> None:
    make_paper(session, upvotes=300)
    by_author = make_paper(session, authors=["Yann LeCun", "Someone Else"], upvotes=1)
    in_category = make_paper(session, categories=["cs.CL"], upvotes=2)
    reader = make_subscriber(
        session, followed_authors=["yann lecun"], categories=["cs.CL"], papers_per_digest=3
    )

    picks = RANKER.pick(session, reader, now=NOW)

    assert [p.paper.id for p in picks[:2]] == [in_category.id, by_author.id]
    assert picks[1].reason == "matches: by Yann LeCun · 1 upvote"
    assert picks[0].reason == "matches: in cs.CL · 2 upvotes"
