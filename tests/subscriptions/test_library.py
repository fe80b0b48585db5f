"""A reader's own papers as "more like this": what is read from pasted ids, BibTeX
and RIS, and what an import records, with arXiv answered by recorded responses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.ranking import load_ranking_config
from digest.papers.models import Paper
from digest.papers.sources import Item
from digest.papers.sources.arxiv_api import ArxivApiSource
from digest.ranking.profiles import profile_of
from digest.ranking.ranker import TrendingRanker
from digest.subscriptions.feedback import record_feedback
from digest.subscriptions.library import (
    MAX_REFERENCES,
    FetchArxiv,
    Reference,
    import_library,
    parse_library,
    references_of,
)
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber
from tests.factories import NOW, make_paper, make_subscriber
from tests.papers.sources.recorded import Recorded, fetcher_answered_by, fixture_bytes

ONE_MISSING = "arxiv_api/arxiv_api_idlist_2ids-1-missing_1707.08567_2026-04-12.xml"
OLD_STYLE = "arxiv_api/arxiv_api_idlist_astro-ph-0601001_oldstyle-id_affiliations_2026-05-11.xml"
WORKSHOP = "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
HOT_JUPITERS = (
    "Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III Transit Surveys "
    "Toward the Galactic Bulge and Carina"
)


def arxiv_answering(answers: Mapping[str, str]) -> Recorded:
    """arXiv as recorded: each ``id_list`` asked for gets its recorded response."""

    def handler(request: httpx.Request) -> httpx.Response:
        recorded = answers.get(request.url.params.get("id_list", ""))
        if recorded is None:
            return httpx.Response(404, text="not recorded")
        return httpx.Response(
            200,
            content=fixture_bytes(recorded),
            headers={"content-type": "application/atom+xml; charset=utf-8"},
        )

    return fetcher_answered_by(handler, min_interval={"export.arxiv.org": 3.0})


def fetch_through(recorded: Recorded) -> FetchArxiv:
    def fetch(ids: Sequence[str]) -> Iterable[Item]:
        return ArxivApiSource(fetcher=recorded.fetcher, id_list=ids).fetch()

    return fetch


def liked(session: Session, reader: Subscriber) -> list[str]:
    return list(
        session.scalars(
            select(Paper.canonical_id)
            .join(Feedback, Feedback.paper_id == Paper.id)
            .where(Feedback.subscriber_id == reader.id, Feedback.kind == FeedbackKind.MORE)
            .order_by(Paper.canonical_id)
        )
    )


# -- reading -------------------------------------------------------------------


def test_pasted_ids_urls_and_arxiv_dois_are_read_whatever_separates_them() -> None:
    parsed = parse_library(
        "2401.01234v2, https://arxiv.org/abs/hep-th/9901001v3\n"
        "https://arxiv.org/pdf/1707.08567v1; arXiv:2104.12255 10.48550/arXiv.2303.08774\n"
        "https://doi.org/10.1103/PhysRevLett.116.061102\n"
    )

    assert [(r.line, r.arxiv_id, r.doi) for r in parsed.references] == [
        (1, "2401.01234", None),
        (1, "hep-th/9901001", None),
        (2, "1707.08567", None),
        (2, "2104.12255", None),
        (2, "2303.08774", None),
        (3, None, "10.1103/physrevlett.116.061102"),
    ]
    assert parsed.problems == []


def test_pasted_words_that_are_no_id_are_reported_by_line_and_the_rest_kept() -> None:
    parsed = parse_library(
        "1707.08567\nmy favourite paper\nhttps://example.org/news/1234567 2104.12255\n"
    )

    assert [r.arxiv_id for r in parsed.references] == ["1707.08567", "2104.12255"]
    assert [str(p) for p in parsed.problems] == [
        "line 2: not an arXiv id, arXiv URL or DOI: my, favourite, paper",
        "line 3: not an arXiv id, arXiv URL or DOI: https://example.org/news/1234567",
    ]


BIBTEX = """% Exported from a reference manager; write to me@example.org
@article{vaswani2017,
  title = {{Attention} Is All You Need},
  author = {Vaswani, Ashish and others},
  eprint = {1706.03762},
  archivePrefix = {arXiv},
  primaryClass = {cs.CL},
}

@misc{broken,
  title = "Never closed,
  author = {Someone}

@article{scholar,
  title={Concepts in information theory},
  journal={arXiv preprint arXiv:1707.08567},
  year={2017}
}
@article{published, title = "A {Gravitational} Wave" # " Detection",
  doi = {10.1103/PhysRevLett.116.061102}, url = {https://doi.org/10.1103/PhysRevLett.116.061102}}
@online{byurl, url = {https://arxiv.org/abs/astro-ph/0601001v1}}
@book{nothing, author = {Nobody}, year = 1999}
@string{jour = "Journal"}
"""


def test_bibtex_entries_give_eprints_arxiv_urls_dois_and_titles() -> None:
    parsed = parse_library(BIBTEX)

    assert parsed.references == [
        Reference(2, arxiv_id="1706.03762", title="Attention Is All You Need"),
        Reference(14, arxiv_id="1707.08567", title="Concepts in information theory"),
        Reference(
            19,
            doi="10.1103/physrevlett.116.061102",
            title="A Gravitational Wave Detection",
        ),
        Reference(21, arxiv_id="astro-ph/0601001"),
    ]
    # The malformed entry is named by its first line; reading went on after it.
    assert [str(p) for p in parsed.problems] == [
        "line 10: BibTeX entry not understood (a quoted value is never closed)",
        "line 22: @book entry has no arXiv id, DOI or title",
    ]


def test_an_eprint_of_another_archive_is_not_taken_for_arxiv() -> None:
    parsed = parse_library("@article{x, eprint = {1234.56789}, archivePrefix = {HAL}}\n")

    assert parsed.references == []
    assert [p.line for p in parsed.problems] == [1]


# Real exporters end a record with "ER  - " (trailing space) or "ER  -".
RIS = "\n".join(
    [
        "TY  - JOUR",
        "AU  - Vaswani, Ashish",
        "TI  - Attention Is All You Need",
        "UR  - https://arxiv.org/abs/1706.03762v7",
        "ER  - ",
        "",
        "TY  - CONF",
        "T1  - Proceedings of Workshop AEW10",
        "N1  - arXiv:1707.08567",
        "ER  -",
        "TY  - JOUR",
        "TI  - A Gravitational Wave Detection",
        "DO  - 10.1103/PhysRevLett.116.061102",
        "UR  - https://journals.aps.org/prl/abstract/10.1103/PhysRevLett.116.061102",
        "ER  - ",
        "TY  - JOUR",
        "AU  - Nobody",
        "ER  - ",
        "this line is not RIS",
        "",
    ]
)


def test_ris_records_give_arxiv_links_notes_dois_and_titles() -> None:
    parsed = parse_library(RIS)

    assert parsed.references == [
        Reference(1, arxiv_id="1706.03762", title="Attention Is All You Need"),
        Reference(7, arxiv_id="1707.08567", title="Proceedings of Workshop AEW10"),
        Reference(
            11,
            doi="10.1103/physrevlett.116.061102",
            title="A Gravitational Wave Detection",
        ),
    ]
    assert [str(p) for p in parsed.problems] == [
        "line 16: RIS record has no arXiv id, DOI or title",
        "line 19: not a RIS line: this line is not RIS",
    ]


# -- importing -----------------------------------------------------------------


def test_pasted_ids_are_fetched_from_arxiv_stored_and_become_more_like_this(
    session: Session,
) -> None:
    reader = make_subscriber(session)
    arxiv = arxiv_answering({"0808.05394,1707.08567": ONE_MISSING})

    summary = import_library(
        session,
        reader,
        parse_library("https://arxiv.org/abs/0808.05394\n1707.08567v1\n"),
        fetch=fetch_through(arxiv),
        now=NOW,
    )

    assert [p.title for p in summary.added] == [WORKSHOP]
    # arXiv has no 0808.05394: reported, not fatal.
    assert [r.describe() for r in summary.not_found] == ["arXiv:0808.05394"]
    assert liked(session, reader) == ["arxiv:1707.08567"]
    stored = session.scalars(select(Paper).where(Paper.canonical_id == "arxiv:1707.08567")).one()
    assert stored.title == WORKSHOP and stored.abstract
    # Seen as of its publication: an old paper of one reader's is no news to the others.
    assert stored.published_on is not None
    assert stored.first_seen_at.date() == stored.published_on < NOW.date()
    (request,) = arxiv.requests
    assert request.url.host == "export.arxiv.org"
    assert request.url.params["id_list"] == "0808.05394,1707.08567"
    assert [r.title for r in references_of(session, reader)] == [WORKSHOP]


def test_stored_papers_are_used_without_asking_arxiv_and_importing_again_adds_nothing(
    session: Session,
) -> None:
    reader = make_subscriber(session)
    known = make_paper(session, canonical_id="arxiv:hep-th/9901001", title="Known")
    arxiv = arxiv_answering({})
    parsed = parse_library("hep-th/9901001v2, https://arxiv.org/pdf/hep-th/9901001")

    first = import_library(session, reader, parsed, fetch=fetch_through(arxiv), now=NOW)
    again = import_library(session, reader, parsed, fetch=fetch_through(arxiv), now=NOW)

    assert [p.id for p in first.added] == [known.id]
    assert (again.added, again.already) == ([], 1)
    assert arxiv.requests == []
    assert session.scalar(select(func.count()).select_from(Feedback)) == 1


def test_references_without_arxiv_id_match_stored_papers_by_doi_or_exact_title(
    session: Session,
) -> None:
    reader = make_subscriber(session)
    by_doi = make_paper(session, doi="10.1103/physrevlett.116.061102", title="GW150914")
    by_title = make_paper(session, title="Attention is all you need")
    arxiv = arxiv_answering({})

    summary = import_library(
        session,
        reader,
        parse_library(
            "@article{a, doi = {10.1103/PhysRevLett.116.061102}}\n"
            "@article{b, title = {{Attention} Is All You {Need}}}\n"
            "@article{c, title = {Attention Is All You Need, Again}}\n"
        ),
        fetch=fetch_through(arxiv),
        now=NOW,
    )

    assert {p.id for p in summary.added} == {by_doi.id, by_title.id}
    assert [r.describe() for r in summary.not_found] == ["“Attention Is All You Need, Again”"]
    assert arxiv.requests == []


def test_a_bibtex_file_with_a_malformed_entry_imports_the_others(session: Session) -> None:
    reader = make_subscriber(session)
    arxiv = arxiv_answering({"1706.03762,1707.08567,astro-ph/0601001": ONE_MISSING})

    summary = import_library(
        session, reader, parse_library(BIBTEX), fetch=fetch_through(arxiv), now=NOW
    )

    # arXiv's recorded answer holds only 1707.08567 of the three ids asked.
    assert [p.title for p in summary.added] == [WORKSHOP]
    assert [r.line for r in summary.not_found] == [2, 19, 21]
    assert [p.line for p in summary.problems] == [10, 22]
    assert "line 10: BibTeX entry not understood" in "\n".join(summary.lines())


def test_an_unreachable_arxiv_is_reported_and_stored_papers_still_imported(
    session: Session,
) -> None:
    reader = make_subscriber(session)
    known = make_paper(session, canonical_id="arxiv:2104.12255", title="0")
    # A 404 is not retried: the source raises, the import goes on without arXiv.
    arxiv = arxiv_answering({})

    summary = import_library(
        session,
        reader,
        parse_library("2104.12255 astro-ph/0601001"),
        fetch=fetch_through(arxiv),
        now=NOW,
    )

    assert [p.id for p in summary.added] == [known.id]
    assert [r.arxiv_id for r in summary.not_found] == ["astro-ph/0601001"]
    assert summary.fetch_error is not None and "404" in summary.fetch_error


def test_only_the_first_references_up_to_the_limit_are_read(session: Session) -> None:
    reader = make_subscriber(session)
    for n in range(MAX_REFERENCES + 5):
        make_paper(session, canonical_id=f"arxiv:2611.{n:05d}")
    pasted = "\n".join(f"2611.{n:05d}" for n in range(MAX_REFERENCES + 5))

    summary = import_library(
        session, reader, parse_library(pasted), fetch=fetch_through(arxiv_answering({})), now=NOW
    )

    assert (len(summary.added), summary.over_limit) == (MAX_REFERENCES, 5)


def test_imported_papers_enter_the_profile_and_raise_papers_like_them(
    session: Session,
) -> None:
    similar = make_paper(
        session,
        title="Transit surveys find hot Jupiters toward the Galactic bulge",
        abstract="Frequency of very hot Jupiters from OGLE transit surveys.",
        upvotes=1,
    )
    popular = make_paper(
        session, title="Robots", abstract="Robot arms learn to grasp cups.", upvotes=300
    )
    reader = make_subscriber(session, interests="", papers_per_digest=1)
    ranker = TrendingRanker(window=timedelta(days=7), config=load_ranking_config(), embedder=None)
    assert [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks] == [popular.id]

    arxiv = arxiv_answering({"astro-ph/0601001": OLD_STYLE})
    summary = import_library(
        session,
        reader,
        parse_library("TY  - JOUR\nUR  - http://arxiv.org/abs/astro-ph/0601001v1\nER  - \n"),
        fetch=fetch_through(arxiv),
        now=NOW,
    )

    assert [p.title for p in summary.added] == [HOT_JUPITERS]
    assert profile_of(session, reader).more_like == (summary.added[0].id,)
    picks = ranker.pick(session, reader, now=NOW).picks
    assert [p.paper.id for p in picks] == [similar.id]
    assert picks[0].reason.startswith("like papers you asked more of")


def test_a_fewer_like_this_paper_in_the_library_becomes_more_like_this(
    session: Session,
) -> None:
    reader = make_subscriber(session)
    paper = make_paper(session, canonical_id="arxiv:2104.12255")
    record_feedback(session, reader, paper.id, FeedbackKind.FEWER, now=NOW)

    summary = import_library(
        session,
        reader,
        parse_library("2104.12255"),
        fetch=fetch_through(arxiv_answering({})),
        now=NOW,
    )

    assert [p.id for p in summary.added] == [paper.id]
    assert liked(session, reader) == ["arxiv:2104.12255"]


@pytest.mark.parametrize("text", ["", "   \n\n", "@comment{nothing here}"])
def test_an_empty_library_imports_nothing(session: Session, text: str) -> None:
    reader = make_subscriber(session)

    summary = import_library(
        session, reader, parse_library(text), fetch=fetch_through(arxiv_answering({})), now=NOW
    )

    assert (summary.added, summary.not_found, summary.problems) == ([], [], [])


def test_a_new_paper_of_the_readers_own_is_not_sent_back_to_them(session: Session) -> None:
    own = make_paper(session, title="Hot Jupiters in transit surveys", upvotes=500)
    other = make_paper(session, title="Transit surveys of hot Jupiters, again", upvotes=2)
    reader = make_subscriber(session, interests="", papers_per_digest=1)
    ranker = TrendingRanker(window=timedelta(days=7), config=load_ranking_config(), embedder=None)
    assert [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks] == [own.id]

    import_library(
        session,
        reader,
        parse_library(own.canonical_id.removeprefix("arxiv:")),
        fetch=fetch_through(arxiv_answering({})),
        now=NOW,
    )

    assert [p.paper.id for p in ranker.pick(session, reader, now=NOW).picks] == [other.id]
