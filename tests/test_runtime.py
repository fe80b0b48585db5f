"""The composition root's own work: what it runs around the domain functions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from digest.clock import utcnow
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.papers.models import Paper, PaperEmbedding
from digest.ranking.semantic import installed
from digest.runtime import Runtime
from tests.papers.sources.recorded import FIXTURES

# A real third-party feed of 22 papers: enough to rank, quick to embed.
FEED = (
    FIXTURES
    / "third_party_feeds/huangboming_hf-daily-paper-feed_feedgen_rss_2026-04-30_22items.xml"
)


@pytest.mark.skipif(not installed(), reason="the semantic extra is not installed")
def test_an_ingest_stores_the_new_papers_embeddings_so_the_first_ranking_computes_none(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(make_settings())
    upgrade(runtime.engine)
    [summary] = runtime.run_ingest(str(FEED))
    assert summary.new == 22

    with unit_of_work(runtime.session_factory) as session:
        embedded = session.scalar(select(func.count()).select_from(PaperEmbedding))
        papers = session.scalar(select(func.count()).select_from(Paper))
    assert embedded == papers == summary.new

    # The rank stage after it: the window's embeddings are read, none computed.
    with (
        caplog.at_level(logging.INFO, logger="digest.ranking.semantic"),
        unit_of_work(runtime.session_factory) as session,
    ):
        candidates = runtime.ranker.candidates(session, now=utcnow())
    assert candidates.vectors is not None and len(candidates) == papers
    assert not [r for r in caplog.records if "embedding" in r.getMessage()]

    # A second ingest of the same listing has nothing new to embed.
    assert runtime.embed_new_papers() == 0
    runtime.dispose()


def test_with_semantic_matching_off_an_ingest_embeds_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    ranking = tmp_path / "ranking.toml"
    ranking.write_text('[relevance]\nsemantic = "off"\n')
    runtime = Runtime(make_settings(ranking_file=ranking))
    upgrade(runtime.engine)
    [summary] = runtime.run_ingest(str(FEED))
    assert summary.new == 22
    with unit_of_work(runtime.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(PaperEmbedding)) == 0
    runtime.dispose()
