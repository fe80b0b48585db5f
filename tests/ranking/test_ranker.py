from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from config.ranking import RankingConfig, load_ranking_config
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.papers.models import PopularitySignal
from digest.ranking.profiles import Profile
from digest.ranking.ranker import TrendingRanker
from digest.ranking.semantic import installed, load_embedder
from digest.subscriptions.feedback import record_feedback
from digest.subscriptions.models import FeedbackKind
from tests.factories import NOW, make_paper, make_subscriber

CONFIG = load_ranking_config()


def lexical_ranker(config: RankingConfig = CONFIG) -> TrendingRanker:
    # Lexical only, so that what is asserted does not depend on a model's judgement.
    return TrendingRanker(window=timedelta(days=7), config=config, embedder=None)


def ids(ranker: TrendingRanker, session: Session, **profile: object) -> list[int]:
    selection = ranker.rank(session, Profile(**profile), now=NOW)  # type: ignore[arg-type]
    return [p.paper.id for p in selection.picks]


def test_readers_without_interests_get_the_overall_trending_list(session: Session) -> None:
    low = make_paper(session, upvotes=3)
    high = make_paper(session, upvotes=120)
    reader = make_subscriber(session, papers_per_digest=3)

    picks = lexical_ranker().pick(session, reader, now=NOW).picks

    assert [p.paper.id for p in picks[:2]] == [high.id, low.id]
    assert picks[0].reason == "120 upvotes · trending +120 today"


def test_upvotes_gained_today_outrank_the_same_total_gathered_earlier(session: Session) -> None:
    week_ago = NOW - timedelta(days=5)
    slow = make_paper(session, first_seen_at=week_ago)
    fast = make_paper(session, first_seen_at=week_ago)
    for paper, earlier in ((slow, 95), (fast, 5)):
        session.add_all(
            [
                PopularitySignal(
                    paper_id=paper.id, source="hf", observed_at=week_ago, upvotes=earlier
                ),
                PopularitySignal(
                    paper_id=paper.id,
                    source="hf",
                    observed_at=NOW - timedelta(hours=2),
                    upvotes=100,
                ),
            ]
        )
    session.flush()

    picks = lexical_ranker().rank(session, Profile(limit=2), now=NOW).picks

    assert [p.paper.id for p in picks] == [fast.id, slow.id]
    assert picks[0].reason == "100 upvotes · trending +95 today"
    assert picks[1].reason == "100 upvotes · trending +5 today"


def test_popularity_fades_with_age(session: Session) -> None:
    old = make_paper(session, first_seen_at=NOW - timedelta(days=4), upvotes=50)
    new = make_paper(session, first_seen_at=NOW - timedelta(hours=3), upvotes=50)
    assert ids(lexical_ranker(), session, limit=2) == [new.id, old.id]


def test_fresh_listings_without_votes_come_after_papers_people_vote_for(session: Session) -> None:
    unvoted = make_paper(session)
    voted = make_paper(session, upvotes=40)
    picks = lexical_ranker().rank(session, Profile(limit=2), now=NOW).picks
    assert [p.paper.id for p in picks] == [voted.id, unvoted.id]
    assert picks[1].reason == "new, not yet voted on"


def test_papers_matching_interests_come_first_with_the_reason(session: Session) -> None:
    make_paper(session, title="A popular paper about compilers", upvotes=500)
    match = make_paper(
        session, title="Image editing with diffusion", abstract="We edit images.", upvotes=2
    )
    reader = make_subscriber(session, interests="Diffusion, image editing", papers_per_digest=2)

    picks = lexical_ranker().pick(session, reader, now=NOW).picks

    # The compiler paper is not relevant enough to be sent at all.
    assert [p.paper.id for p in picks] == [match.id]
    # Named first: the interest it was picked for (its best match of the two).
    assert picks[0].reason == "matches: image editing, diffusion · 2 upvotes · trending +2 today"


def test_a_phrase_in_order_beats_its_words_scattered(session: Session) -> None:
    scattered = make_paper(
        session,
        title="Editing a scene graph",
        abstract="We edit graphs; the image of a graph is an embedding.",
    )
    phrase = make_paper(
        session, title="Instruction-driven image editing", abstract="Edits from instructions."
    )
    assert ids(lexical_ranker(), session, interests="image editing", limit=2)[0] == phrase.id
    assert scattered.id in ids(lexical_ranker(), session, interests="image editing", limit=2)


def test_a_word_in_the_title_weighs_more_than_in_the_abstract(session: Session) -> None:
    in_abstract = make_paper(
        session, title="Scaling laws", abstract="We also try a quantized model briefly."
    )
    in_title = make_paper(session, title="Quantization of large models", abstract="Scaling.")
    assert ids(lexical_ranker(), session, interests="quantization", limit=2) == [
        in_title.id,
        in_abstract.id,
    ]


def test_excluded_keywords_keep_papers_out_in_any_word_form(session: Session) -> None:
    make_paper(session, title="A blockchain for model weights", upvotes=900)
    make_paper(session, title="Quantized diffusion", upvotes=900)
    kept = make_paper(session, title="Sparse attention", upvotes=5)
    excluded = ("Blockchain", "quantization")
    assert ids(lexical_ranker(), session, excluded=excluded, limit=5) == [kept.id]


def test_a_paper_already_sent_to_the_reader_is_never_picked_again(session: Session) -> None:
    sent = make_paper(session, upvotes=1000)
    fresh = make_paper(session, upvotes=1)
    reader = make_subscriber(session)
    other = make_subscriber(session)
    delivery = Delivery(subscriber_id=reader.id, edition="2026-11-20", status=DeliveryStatus.SENT)
    delivery.papers = [DeliveryPaper(paper_id=sent.id, position=0)]
    session.add(delivery)
    session.flush()
    ranker = lexical_ranker()

    assert [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks] == [fresh.id]
    assert sent.id in [p.paper.id for p in ranker.pick(session, other, now=NOW).picks]


def test_papers_outside_the_window_are_not_candidates(session: Session) -> None:
    make_paper(session, first_seen_at=NOW - timedelta(days=8), upvotes=999)
    recent = make_paper(session, first_seen_at=NOW - timedelta(days=1))
    assert ids(lexical_ranker(), session) == [recent.id]
    # --since widens the window (backfills, evaluation).
    wider = lexical_ranker().rank(session, Profile(), now=NOW, since=NOW - timedelta(days=30)).picks
    assert len(wider) == 2


def test_the_digest_size_is_the_readers_preference(session: Session) -> None:
    for n in range(10):
        make_paper(session, upvotes=n)
    reader = make_subscriber(session, papers_per_digest=4)
    assert len(lexical_ranker().pick(session, reader, now=NOW).picks) == 4


def test_near_duplicates_reach_a_digest_once(session: Session) -> None:
    text = "We propose a sparse mixture of experts router that balances load across experts."
    first = make_paper(
        session, title="Balanced routing for sparse experts", abstract=text, upvotes=9
    )
    make_paper(session, title="Balanced routing for sparse experts", abstract=text, upvotes=8)
    other = make_paper(session, title="Protein folding", abstract="Folding proteins.", upvotes=1)
    assert ids(lexical_ranker(), session, limit=3) == [first.id, other.id]


def test_a_day_with_nothing_relevant_sends_nothing_and_says_why(session: Session) -> None:
    make_paper(session, title="Compilers", upvotes=100)
    selection = lexical_ranker().rank(session, Profile(interests="protein folding"), now=NOW)
    assert selection.picks == []
    assert selection.note == "nothing relevant enough today"


def test_nothing_relevant_can_fall_back_to_the_trending_list(session: Session) -> None:
    popular = make_paper(session, title="Compilers", upvotes=100)
    config = CONFIG.model_copy(
        update={
            "selection": CONFIG.selection.model_copy(
                update={"send_trending_when_nothing_relevant": True}
            )
        }
    )
    selection = lexical_ranker(config).rank(session, Profile(interests="protein folding"), now=NOW)
    assert [p.paper.id for p in selection.picks] == [popular.id]
    assert "overall trending" in selection.note


def test_followed_authors_and_categories_count_as_matches(session: Session) -> None:
    make_paper(session, upvotes=300)
    by_author = make_paper(session, authors=["Yann LeCun", "Someone Else"], upvotes=1)
    in_category = make_paper(session, categories=["cs.CL"], upvotes=2)
    reader = make_subscriber(
        session, followed_authors=["yann lecun"], categories=["cs.CL"], papers_per_digest=3
    )

    picks = lexical_ranker().pick(session, reader, now=NOW).picks

    # The author boost is larger than the category's; the unrelated paper is not sent.
    assert [p.paper.id for p in picks] == [by_author.id, in_category.id]
    assert picks[0].reason.startswith("matches: by Yann LeCun · 1 upvote")
    assert picks[1].reason.startswith("matches: in cs.CL · 2 upvotes")


def test_more_like_this_raises_similar_papers_in_later_digests(session: Session) -> None:
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
    popular = make_paper(
        session, title="Robots", abstract="Robot arms learn to grasp cups.", upvotes=300
    )
    reader = make_subscriber(session, interests="robot grasping, learning", papers_per_digest=1)
    ranker = lexical_ranker()
    assert [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks] == [popular.id]

    record_feedback(session, reader, liked.id, FeedbackKind.MORE, now=NOW)
    reader.interests = ""
    session.flush()

    picks = ranker.pick(session, reader, now=NOW).picks
    assert [p.paper.id for p in picks] == [similar.id]
    assert picks[0].reason.startswith("like papers you asked more of")


def test_fewer_like_this_lowers_similar_papers_and_drops_the_paper(session: Session) -> None:
    disliked = make_paper(
        session, title="Prompt tuning for chat models", abstract="Prompt tuning chat.", upvotes=90
    )
    similar = make_paper(
        session, title="Prompt tuning for chat assistants", abstract="Prompt tuning.", upvotes=80
    )
    other = make_paper(session, title="Weather forecasting", abstract="Forecasts.", upvotes=10)
    reader = make_subscriber(session, papers_per_digest=3)
    ranker = lexical_ranker()
    before = [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks]
    assert before == [disliked.id, similar.id, other.id]

    record_feedback(session, reader, disliked.id, FeedbackKind.FEWER, now=NOW)

    # Without interests: still the trending list, minus the paper, close ones last.
    after = [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks]
    assert after == [other.id, similar.id]
    reader.interests = "forecasting, chat"
    session.flush()
    with_interests = [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks]
    assert with_interests[0] == other.id


@pytest.mark.skipif(not installed(), reason="the semantic extra is not installed")
def test_semantic_matching_finds_papers_that_share_no_words(session: Session) -> None:
    mobile = make_paper(
        session,
        title="MobileNets: efficient convolutional neural networks for mobile vision",
        abstract="Depthwise separable convolutions build light models for embedded devices "
        "with low latency.",
    )
    make_paper(
        session,
        title="A survey of protein structure prediction",
        abstract="We review methods that predict how amino acid chains fold.",
        upvotes=200,
    )
    ranker = TrendingRanker(window=timedelta(days=7), config=CONFIG, embedder=load_embedder("on"))
    picks = ranker.rank(session, Profile(interests="making networks run on phones"), now=NOW).picks
    assert [p.paper.id for p in picks] == [mobile.id]
    assert "close to “making networks run on phones”" in picks[0].reason
    # The lexical ranker alone finds nothing relevant enough.
    assert ids(lexical_ranker(), session, interests="making networks run on phones") == []


def test_a_batch_ranked_together_picks_what_each_reader_gets_alone(session: Session) -> None:
    make_paper(session, title="Diffusion models for video", upvotes=30)
    make_paper(session, title="Protein folding with transformers", upvotes=10)
    make_paper(session, title="Quantum error correction", upvotes=50)
    readers = [
        make_subscriber(session, interests="diffusion, video"),
        make_subscriber(session, interests="protein folding"),
        make_subscriber(session),
        make_subscriber(session, interests="origami"),
    ]
    alone = [
        [p.paper.id for p in lexical_ranker().pick(session, r, now=NOW).picks] for r in readers
    ]
    ranker = lexical_ranker()

    ranker.prepare(session, readers, now=NOW)

    together = [[p.paper.id for p in ranker.pick(session, r, now=NOW).picks] for r in readers]
    assert together == alone
    assert [len(p) for p in alone] == [1, 1, 3, 0]


def three_interests_day(session: Session) -> dict[str, list[int]]:
    """A day when one of a reader's three unrelated interests is busy and popular."""
    topics = ("at scale", "from sequences", "in membranes", "kinetics")
    busy = [
        make_paper(
            session,
            title=f"Protein folding {topic}",
            abstract=f"Protein folding, predicted {topic}.",
            upvotes=100 + n,
        ).id
        for n, topic in enumerate(topics)
    ]
    # The other two only in their abstracts: less relevant, and barely voted on.
    graphs = make_paper(
        session,
        title="Forecasting city traffic",
        abstract="We forecast traffic with graph neural networks over road sensors.",
        upvotes=1,
    ).id
    speech = make_paper(
        session,
        title="Transcribing meetings",
        abstract="Robust speech recognition for meetings held in noisy rooms.",
        upvotes=2,
    ).id
    make_paper(session, title="Compilers", abstract="Register allocation.", upvotes=300)
    return {
        "protein folding": busy,
        "graph neural networks": [graphs],
        "speech recognition": [speech],
    }


READER = "protein folding, graph neural networks, speech recognition"


def test_a_reader_of_three_interests_gets_one_paper_for_each_first(session: Session) -> None:
    day = three_interests_day(session)

    picks = lexical_ranker().rank(session, Profile(interests=READER, limit=5), now=NOW).picks

    served = {}
    for pick in picks[:3]:
        [interest] = [i for i, papers in day.items() if pick.paper.id in papers]
        served[interest] = pick
    assert set(served) == set(day)
    for interest, pick in served.items():
        # The reason names the interest the paper is there for, first.
        assert pick.reason.startswith(f"matches: {interest} · ")
    # The rest of the digest: the busy interest's next best, by score.
    assert {p.paper.id for p in picks[3:]} <= set(day["protein folding"]) and len(picks) == 5


def test_serving_every_interest_can_be_turned_off(session: Session) -> None:
    day = three_interests_day(session)
    config = CONFIG.model_copy(
        update={"selection": CONFIG.selection.model_copy(update={"serve_every_interest": False})}
    )

    picks = lexical_ranker(config).rank(session, Profile(interests=READER, limit=3), now=NOW).picks

    # By final score alone the popular interest takes every slot.
    assert {p.paper.id for p in picks} <= set(day["protein folding"])


def test_a_followed_author_still_comes_first_beside_interests(session: Session) -> None:
    day = three_interests_day(session)
    by_author = make_paper(
        session, title="Cooking robots", abstract="A kitchen.", authors=["Karen Spärck Jones"]
    )

    profile = Profile(interests=READER, authors=("karen spärck jones",), limit=4)
    picks = lexical_ranker().rank(session, profile, now=NOW).picks

    assert picks[0].paper.id == by_author.id
    assert picks[0].reason.startswith("matches: by Karen Spärck Jones")
    assert {p.paper.id for p in picks[1:]} == {
        day["protein folding"][-1],
        *day["graph neural networks"],
        *day["speech recognition"],
    }


def test_the_trending_section_is_the_overall_list_and_can_be_off(session: Session) -> None:
    day = three_interests_day(session)
    [popular] = [
        p.paper.id for p in lexical_ranker().rank(session, Profile(limit=1), now=NOW).picks
    ]

    section = lexical_ranker().trending(session, now=NOW)

    assert section[0].paper.id == popular
    assert section[0].reason == "300 upvotes · trending +300 today"
    # Longer than it shows (3), so that any reader's own picks can be left out.
    assert len(section) == len(day["protein folding"]) + 3
    off = CONFIG.model_copy(
        update={"selection": CONFIG.selection.model_copy(update={"trending_section_size": 0})}
    )
    assert lexical_ranker(off).trending(session, now=NOW) == []
