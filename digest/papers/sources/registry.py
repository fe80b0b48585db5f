"""Sources built from their configuration (``config.sources``) with the shared :class:`Fetcher`.

``digest ingest --source`` also takes a feed URL or path that is not configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from config.sources import SourceConfig, SourceConfigError
from digest.papers.sources import Source
from digest.papers.sources.http import USER_AGENT, Fetcher

# arXiv's API terms: no more than one request every three seconds.
POLITE_INTERVALS = {"export.arxiv.org": 3.0, "rss.arxiv.org": 1.0}


def make_fetcher(*, site_url: str, timeout: float, max_bytes: int) -> Fetcher:
    """A fetcher whose User-Agent points feed owners at this installation."""
    return Fetcher(
        user_agent=f"{USER_AGENT[: USER_AGENT.index(' (')]} (+{site_url})",
        timeout=timeout,
        max_bytes=max_bytes,
        min_interval=POLITE_INTERVALS,
    )


def build_source(config: SourceConfig, fetcher: Fetcher) -> Source:
    # Imported here so that a kind's dependencies load only when it is used.
    options = dict(config.options)
    try:
        if config.kind == "sample":
            from digest.papers.sources.sample import SampleSource

            return SampleSource(**options)
        if config.kind == "huggingface":
            from digest.papers.sources.huggingface import HuggingFaceSource

            return HuggingFaceSource(name=config.name, fetcher=fetcher, **options)
        if config.kind == "arxiv_rss":
            from digest.papers.sources.arxiv_rss import ArxivRssSource

            return ArxivRssSource(name=config.name, fetcher=fetcher, **options)
        if config.kind == "arxiv_api":
            from digest.papers.sources.arxiv_api import ArxivApiSource

            return ArxivApiSource(name=config.name, fetcher=fetcher, **options)
        from digest.papers.sources.feed import FeedMapping, FeedSource

        mapping = FeedMapping.from_config(options.pop("mapping", {}))
        return FeedSource(name=config.name, fetcher=fetcher, mapping=mapping, **options)
    except (TypeError, ValueError) as exc:
        # Unknown or mistyped options: say which table of the file is wrong.
        raise SourceConfigError(f"[sources.{config.name}]: {exc}") from exc


def source_for(configs: Sequence[SourceConfig], fetcher: Fetcher, name_or_url: str) -> Source:
    """A configured source by name (enabled or not), or an ad-hoc feed by URL or path
    (read as arXiv RSS when its body turns out to be a listing: only fetching tells)."""
    for config in configs:
        if config.name == name_or_url:
            return build_source(config, fetcher)
    if "://" in name_or_url or Path(name_or_url).exists():
        from digest.papers.sources.feed import FeedSource

        url = name_or_url if "://" in name_or_url else Path(name_or_url).resolve().as_uri()
        return FeedSource(name="feed", url=url, fetcher=fetcher)
    known = ", ".join(c.name for c in configs)
    raise LookupError(f"unknown source {name_or_url!r} (known: {known}; or give a feed URL)")
