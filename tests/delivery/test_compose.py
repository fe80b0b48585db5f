"""Composing one reader's digest from stored papers."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.orm import Session

from config.settings import Settings
from digest.papers.models import Paper
from digest.papers.sources import PaperRecord
from digest.papers.storage import store_papers
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from tests.factories import NOW, make_subscriber


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def test_readers_see_latex_as_unicode_and_never_as_markup(
    session: Session, settings: Settings
) -> None:
    store_papers(
        session,
        [
            PaperRecord(
                canonical_id="arxiv:2611.00042",
                title=r"Scaling $\alpha$-entmax to $10^6$ tokens",
                abstract=r"We show $\mathcal{O}(n \log n)$ attention with $\beta \to 0$.",
                links={"abs": "https://arxiv.org/abs/2611.00042"},
            )
        ],
        source="test",
        now=NOW,
    )
    paper = session.query(Paper).one()
    reader = make_subscriber(session)

    composed = Runtime(settings).composer.compose(
        reader, [Pick(paper=paper, reason="", upvotes=None)], edition="2026-11-21", now=NOW
    )

    assert composed.message["Subject"].startswith("Scaling α-entmax to 10^6 tokens")
    for text in (body(composed.message, "plain"), body(composed.message, "html")):
        assert "α-entmax" in text and "𝒪(n log n)" in text and "β" in text
        assert r"\alpha" not in text and "$" not in text
