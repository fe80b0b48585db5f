"""Which sources run: the sources file, DIGEST_SOURCES, ad-hoc feeds; and beat's schedule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.beat import beat_schedule
from config.settings import Settings
from config.sources import SourceConfigError
from digest.papers.sources.arxiv_rss import ArxivRssSource
from digest.papers.sources.feed import FeedSource
from digest.papers.sources.huggingface import HuggingFaceSource
from digest.papers.sources.registry import build_source, source_for
from digest.runtime import Runtime


def test_the_shipped_file_runs_hugging_face_and_arxiv_listings(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(sources="")
    runtime = Runtime(settings)
    enabled = {c.name: c for c in runtime.enabled_source_configs()}
    assert set(enabled) == {"huggingface", "arxiv-rss"}
    fetcher = runtime.fetcher()
    assert isinstance(build_source(enabled["huggingface"], fetcher), HuggingFaceSource)
    rss = build_source(enabled["arxiv-rss"], fetcher)
    assert isinstance(rss, ArxivRssSource)
    assert rss.url == "https://rss.arxiv.org/rss/cs.AI+cs.CL+cs.CV+cs.LG"
    assert fetcher.client.headers["user-agent"].endswith("(+https://digest.example.org)")


def test_digest_sources_picks_exactly_the_named_ones(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(sources="sample, arxiv-api")
    assert [c.name for c in Runtime(settings).enabled_source_configs()] == ["arxiv-api", "sample"]
    with pytest.raises(SourceConfigError, match="unknown sources: nope"):
        Runtime(make_settings(sources="sample,nope")).source_configs()


def test_beat_ingests_each_source_on_its_own_schedule(
    make_settings: Callable[..., Settings],
) -> None:
    schedule = beat_schedule(make_settings(sources="", ingest_interval_minutes=15))
    assert schedule["ingest-huggingface"]["schedule"].total_seconds() == 30 * 60
    assert schedule["ingest-huggingface"]["args"] == ("huggingface",)
    assert schedule["ingest-arxiv-rss"]["schedule"].total_seconds() == 60 * 60
    assert "ingest-arxiv-api" not in schedule  # disabled in the file
    assert "dispatch-due-digests" in schedule


def test_a_feed_of_ones_own_is_configured_with_a_mapping(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    feed = tmp_path / "lab.xml"
    feed.write_text("<rss/>")
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f"""
[sources.lab]
kind = "feed"
url = "{feed.as_uri()}"
mapping = {{ abstract_field = "summary", abstract_is_html = false }}
"""
    )
    settings = make_settings(sources="", sources_file=sources)
    runtime = Runtime(settings)
    [config] = runtime.enabled_source_configs()
    source = build_source(config, runtime.fetcher())
    assert isinstance(source, FeedSource)
    assert source.name == "lab"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sources.x]\nkind = "carrier-pigeon"', "kind 'carrier-pigeon' is not one of"),
        ("[sources.x\n", "not valid TOML"),
        ('[sources.x]\nkind = "arxiv_rss"\ncolours = ["red"]', r"\[sources.x\]: .*colours"),
    ],
)
def test_a_bad_sources_file_is_a_clear_error(
    make_settings: Callable[..., Settings], tmp_path: Path, text: str, message: str
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(text)
    settings = make_settings(sources="", sources_file=sources)
    with pytest.raises(SourceConfigError, match=message):
        runtime = Runtime(settings)
        for config in runtime.source_configs():
            build_source(config, runtime.fetcher())


def test_an_unconfigured_feed_can_be_ingested_by_url_or_path(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    feed = tmp_path / "dropped.xml"
    feed.write_text("<rss/>")
    settings = make_settings()
    runtime = Runtime(settings)
    fetcher = runtime.fetcher()
    by_path = source_for(runtime.source_configs(), fetcher, str(feed))
    assert isinstance(by_path, FeedSource) and by_path.url == feed.as_uri()
    with pytest.raises(LookupError, match="unknown source 'nowhere'"):
        source_for(runtime.source_configs(), fetcher, "nowhere")
