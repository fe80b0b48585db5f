"""How much attention a paper is getting now: popularity, its velocity, and age.

Popularity is stored as change points (a row when a source reports a different
value), so the value at any moment is the last change point at or before it, and
the upvotes gained over a window are the value now minus the value at its start.
The formula and its parameters are in ``config/ranking.toml``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.ranking import TrendingConfig
from digest.db.limits import IN_LIST_CHUNK
from digest.papers.models import PopularitySignal


@dataclass(frozen=True)
class Observation:
    source: str
    observed_at: datetime
    upvotes: int | None
    comments: int | None
    github_stars: int | None


@dataclass(frozen=True)
class Trend:
    """What the sources say about one paper at a moment; ``None`` = never reported."""

    upvotes: int | None = None
    # Upvotes gained over the velocity window (``None`` without upvotes).
    gained: int | None = None
    comments: int | None = None
    github_stars: int | None = None

    @property
    def has_signal(self) -> bool:
        return any(v is not None for v in (self.upvotes, self.comments, self.github_stars))


def trend_at(
    observations: Iterable[Observation],
    *,
    now: datetime,
    window: timedelta,
    first_seen_at: datetime,
) -> Trend:
    """Combine one paper's change points as seen at ``now``.

    Each source is read separately (their counts are not comparable) and the
    highest value any source reports wins. Upvotes a paper had when it first
    appeared inside the window were gained inside the window.
    """
    start = now - window
    latest: dict[str, Observation] = {}
    at_start: dict[str, int] = {}
    for obs in sorted(observations, key=lambda o: o.observed_at):
        if obs.observed_at > now:
            break
        latest[obs.source] = obs
        if obs.observed_at <= start and obs.upvotes is not None:
            at_start[obs.source] = obs.upvotes

    def highest(values: Iterable[int | None]) -> int | None:
        present = [v for v in values if v is not None]
        return max(present) if present else None

    gains = []
    for source, obs in latest.items():
        if obs.upvotes is None:
            continue
        if source in at_start:
            base = at_start[source]
        elif first_seen_at >= start:
            base = 0
        else:
            # Known before the window but first counted inside it: no baseline, no claim.
            base = obs.upvotes
        gains.append(max(obs.upvotes - base, 0))
    return Trend(
        upvotes=highest(o.upvotes for o in latest.values()),
        gained=max(gains) if gains else None,
        comments=highest(o.comments for o in latest.values()),
        github_stars=highest(o.github_stars for o in latest.values()),
    )


def trends_for(
    session: Session,
    first_seen: dict[int, datetime],
    *,
    now: datetime,
    config: TrendingConfig,
) -> dict[int, Trend]:
    """The trend of each paper in ``first_seen`` (paper id -> when it first appeared)."""
    by_paper: dict[int, list[Observation]] = defaultdict(list)
    ids = list(first_seen)
    for offset in range(0, len(ids), IN_LIST_CHUNK):
        rows = session.execute(
            select(
                PopularitySignal.paper_id,
                PopularitySignal.source,
                PopularitySignal.observed_at,
                PopularitySignal.upvotes,
                PopularitySignal.comments,
                PopularitySignal.github_stars,
            ).where(
                PopularitySignal.paper_id.in_(ids[offset : offset + IN_LIST_CHUNK]),
                PopularitySignal.observed_at <= now,
            )
        )
        for paper_id, source, observed_at, upvotes, comments, stars in rows:
            by_paper[paper_id].append(Observation(source, observed_at, upvotes, comments, stars))
    window = timedelta(hours=config.velocity_hours)
    return {
        paper_id: trend_at(by_paper.get(paper_id, ()), now=now, window=window, first_seen_at=seen)
        for paper_id, seen in first_seen.items()
    }


def trending_scores(
    trends: Sequence[Trend],
    ages_hours: Sequence[float],
    config: TrendingConfig,
) -> np.ndarray:
    """The trending score of each paper (unbounded, >= 0), in the order given."""
    scores = np.empty(len(trends), dtype=np.float64)
    for i, (trend, age) in enumerate(zip(trends, ages_hours, strict=True)):
        if trend.has_signal:
            social = (
                config.upvotes_weight * math.log1p(trend.upvotes or 0)
                + config.velocity_weight * math.log1p(trend.gained or 0)
                + config.comments_weight * math.log1p(trend.comments or 0)
                + config.stars_weight * math.log1p(trend.github_stars or 0)
            )
        else:
            social = config.upvotes_weight * math.log1p(config.unvoted_as_upvotes)
        scores[i] = social * 0.5 ** (max(age, 0.0) / config.half_life_hours)
    return scores


def velocity_label(config: TrendingConfig) -> str:
    hours = config.velocity_hours
    if hours == 24:
        return "today"
    if hours % 24 == 0:
        return f"in {int(hours // 24)} days"
    return f"in {hours:g} h"
