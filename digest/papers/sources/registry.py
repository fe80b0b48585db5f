"""Which sources an installation runs: ``config/sources.toml``, overridable by env.

A source is named in the file and built here with the shared :class:`Fetcher`;
``digest ingest --source`` also takes a feed URL or path that is not configured.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from config.settings import Settings
from digest.papers.sources import Source
from digest.papers.sources.http import USER_AGENT, Fetcher

# arXiv's API terms: no more than one request every three seconds.
POLITE_INTERVALS = {"export.arxiv.org": 3.0, "rss.arxiv.org": 1.0}
_KINDS = frozenset({"huggingface", "arxiv_rss", "arxiv_api", "feed", "sample"})
_COMMON_KEYS = frozenset({"kind", "enabled", "every_minutes"})


class SourceConfigError(ValueError):
    """The sources file says something that cannot be run."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    enabled: bool = True
    every_minutes: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def load_source_configs(settings: Settings) -> list[SourceConfig]:
    """Every source in the sources file, with DIGEST_SOURCES applied to ``enabled``."""
    if settings.sources_file is not None:
        try:
            text = Path(settings.sources_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SourceConfigError(f"cannot read {settings.sources_file}: {exc}") from exc
    else:
        text = resources.files("config").joinpath("sources.toml").read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"sources file is not valid TOML: {exc}") from exc
    configs = []
    for name, table in (data.get("sources") or {}).items():
        if not isinstance(table, dict):
            raise SourceConfigError(f"[sources.{name}] must be a table")
        kind = table.get("kind")
        if kind not in _KINDS:
            raise SourceConfigError(
                f"[sources.{name}] kind {kind!r} is not one of {', '.join(sorted(_KINDS))}"
            )
        every = table.get("every_minutes")
        configs.append(
            SourceConfig(
                name=name,
                kind=kind,
                enabled=bool(table.get("enabled", True)),
                every_minutes=float(every) if every is not None else None,
                options={k: v for k, v in table.items() if k not in _COMMON_KEYS},
            )
        )
    wanted = [n.strip() for n in settings.sources.split(",") if n.strip()]
    if wanted:
        unknown = sorted(set(wanted) - {c.name for c in configs})
        if unknown:
            raise SourceConfigError(f"DIGEST_SOURCES names unknown sources: {', '.join(unknown)}")
        configs = [
            SourceConfig(c.name, c.kind, c.name in wanted, c.every_minutes, c.options)
            for c in configs
        ]
    return configs


def enabled_source_configs(settings: Settings) -> list[SourceConfig]:
    return [c for c in load_source_configs(settings) if c.enabled]


def make_fetcher(settings: Settings) -> Fetcher:
    return Fetcher(
        user_agent=f"{USER_AGENT[: USER_AGENT.index(' (')]} (+{settings.base_url})",
        timeout=settings.fetch_timeout_seconds,
        max_bytes=settings.fetch_max_bytes,
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


def source_for(settings: Settings, fetcher: Fetcher, name_or_url: str) -> Source:
    """A configured source by name (enabled or not), or an ad-hoc feed by URL or path."""
    for config in load_source_configs(settings):
        if config.name == name_or_url:
            return build_source(config, fetcher)
    if "://" in name_or_url or Path(name_or_url).exists():
        from digest.papers.sources.feed import FeedSource

        url = name_or_url if "://" in name_or_url else Path(name_or_url).resolve().as_uri()
        return FeedSource(name="feed", url=url, fetcher=fetcher)
    known = ", ".join(c.name for c in load_source_configs(settings))
    raise LookupError(f"unknown source {name_or_url!r} (known: {known}; or give a feed URL)")
