"""Choosing papers for each reader: relevance to what they asked for, blended
with what is trending, never a paper they were already sent, no near-duplicates.

Scoring works on many readers at once (matrices of readers x candidate papers),
so a batch of a hundred thousand readers costs a few matrix products; the
per-reader :class:`TrendingRanker` used by the delivery path is the same code
with a batch of one. Parameters: ``config/ranking.toml``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.ranking import RankingConfig
from digest.models import (
    Delivery,
    DeliveryPaper,
    DeliveryStatus,
    Feedback,
    FeedbackKind,
    Paper,
    PopularitySignal,
    Subscriber,
)
from digest.relevance import LexicalIndex, split_phrases
from digest.semantic import Embedder, paper_vectors
from digest.trending import Trend, trending_scores, trends_for, velocity_label

log = logging.getLogger(__name__)

# Paper-to-paper cosine in the lexical space is lower than in the embedding space
# for the same closeness; these map it onto 0..1 like semantic_floor/ceiling do.
LEXICAL_SIMILARITY_FLOOR = 0.05
LEXICAL_SIMILARITY_CEILING = 0.40
# Near-duplicates in the lexical space (same work under two titles, v1 and v2).
LEXICAL_NEAR_DUPLICATE = 0.8


@dataclass(frozen=True)
class Profile:
    """What a reader asked for; built from a subscriber or typed into ``digest preview``."""

    interests: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    # Paper ids the reader asked more / fewer of from a digest.
    more_like: tuple[int, ...] = ()
    fewer_like: tuple[int, ...] = ()
    limit: int = 5

    @property
    def phrases(self) -> list[str]:
        return split_phrases(self.interests)

    @property
    def personal(self) -> bool:
        """Whether the reader said what they want (otherwise: the overall trending list)."""
        return bool(self.phrases or self.authors or self.categories or self.more_like)


def profile_of(session: Session, subscriber: Subscriber) -> Profile:
    feedback = session.execute(
        select(Feedback.paper_id, Feedback.kind)
        .where(Feedback.subscriber_id == subscriber.id)
        .order_by(Feedback.created_at, Feedback.paper_id)
    ).all()
    return Profile(
        interests=subscriber.interests,
        authors=tuple(subscriber.followed_authors),
        categories=tuple(subscriber.categories),
        excluded=tuple(subscriber.excluded_keywords),
        more_like=tuple(p for p, k in feedback if k == FeedbackKind.MORE),
        fewer_like=tuple(p for p, k in feedback if k == FeedbackKind.FEWER),
        limit=subscriber.papers_per_digest,
    )


@dataclass(frozen=True)
class Pick:
    paper: Paper
    reason: str
    upvotes: int | None
    score: float = 0.0
    relevance: float | None = None


@dataclass
class Selection:
    picks: list[Pick]
    # Why the list is empty or is not personal, for logs and the delivery ledger.
    note: str = ""


class Ranker(Protocol):
    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection: ...


def sent_paper_ids(session: Session, subscriber_id: int) -> set[int]:
    return set(
        session.scalars(
            select(DeliveryPaper.paper_id)
            .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
            .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT)
        )
    )


@dataclass
class Candidates:
    """The papers that may go into digests at one moment, indexed for scoring."""

    papers: list[Paper]
    trends: list[Trend]
    trending: np.ndarray  # 0..1, the best paper today = 1
    lexical: LexicalIndex
    vectors: np.ndarray | None  # unit rows, or None without semantic matching
    config: RankingConfig
    velocity_label: str = "today"
    position: dict[int, int] = field(default_factory=dict)
    duplicate_groups: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.position = {p.id: i for i, p in enumerate(self.papers)}
        self._authors = _membership([[a.casefold() for a in p.authors] for p in self.papers])
        self._categories = _membership([list(p.categories) for p in self.papers])
        self._similarity_rows = (
            self.vectors if self.vectors is not None else self.lexical.normalised_rows()
        )
        self.duplicate_groups = self._near_duplicates()

    @classmethod
    def build(
        cls,
        papers: Sequence[Paper],
        trends: Sequence[Trend],
        *,
        now: datetime,
        config: RankingConfig,
        vectors: np.ndarray | None = None,
    ) -> Candidates:
        ages = [(now - _appeared(p)).total_seconds() / 3600 for p in papers]
        raw = trending_scores(trends, ages, config.trending)
        top = raw.max() if raw.size else 0.0
        return cls(
            papers=list(papers),
            trends=list(trends),
            trending=raw / top if top > 0 else raw,
            lexical=LexicalIndex(
                [p.title for p in papers], [p.abstract for p in papers], config.relevance
            ),
            vectors=vectors,
            config=config,
            velocity_label=velocity_label(config.trending),
        )

    def __len__(self) -> int:
        return len(self.papers)

    def _near_duplicates(self) -> list[np.ndarray]:
        if len(self.papers) < 2:
            return []
        rows = self._similarity_rows
        threshold = (
            self.config.selection.near_duplicate_similarity
            if self.vectors is not None
            else LEXICAL_NEAR_DUPLICATE
        )
        similar = rows @ rows.T
        pairs = sp.triu(sp.csr_matrix(similar >= threshold), k=1)
        if pairs.nnz == 0:
            return []
        count, labels = sp.csgraph.connected_components(pairs, directed=False)
        sizes = np.bincount(labels, minlength=count)
        return [np.flatnonzero(labels == g) for g in np.flatnonzero(sizes > 1)]

    def similarity(self, references: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """References x candidates, mapped onto 0..1 (unrelated = 0)."""
        raw = references @ self._similarity_rows.T
        raw = raw.toarray() if sp.issparse(raw) else np.asarray(raw)
        if self.vectors is not None:
            low = self.config.relevance.semantic_floor
            high = self.config.relevance.semantic_ceiling
        else:
            low, high = LEXICAL_SIMILARITY_FLOOR, LEXICAL_SIMILARITY_CEILING
        return np.clip((raw - low) / (high - low), 0.0, 1.0)

    def reference_rows(
        self, papers: Sequence[Paper], vectors: np.ndarray | None
    ) -> np.ndarray | sp.csr_matrix:
        """Rows comparable with the candidates' for papers that may not be candidates."""
        if self.vectors is not None:
            assert vectors is not None
            return vectors
        rows = self.lexical.transform([p.title for p in papers], [p.abstract for p in papers])
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return (sp.diags(1.0 / norms) @ rows).tocsr()


@dataclass
class Scored:
    """One reader's scores over the candidates."""

    final: np.ndarray
    relevance: np.ndarray | None  # None: not a personal profile
    eligible: np.ndarray


def score_profiles(
    candidates: Candidates,
    profiles: Sequence[Profile],
    *,
    sent: Sequence[set[int]] | None = None,
    embedder: Embedder | None = None,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final scores, relevance and eligibility, each readers x candidates.

    ``feedback_rows`` maps a paper id named in some profile's feedback to its
    reference row (see :meth:`Candidates.reference_rows`); candidates need none.
    """
    config = candidates.config
    n_readers, n_papers = len(profiles), len(candidates)
    relevance = np.zeros((n_readers, n_papers), dtype=np.float32)
    eligible = np.ones((n_readers, n_papers), dtype=bool)

    # Each reader's phrases, then (for two or more) the whole text: a paper that
    # touches several of the reader's phrases beats one that hits only one.
    phrases: list[str] = []
    owners: list[int] = []
    whole: list[bool] = []
    for r, profile in enumerate(profiles):
        parts = profile.phrases
        for phrase in parts + ([", ".join(parts)] if len(parts) > 1 else []):
            phrases.append(phrase)
            owners.append(r)
        whole.extend([False] * len(parts) + ([True] if len(parts) > 1 else []))
    if phrases:
        matched = candidates.lexical.scores(candidates.lexical.query_matrix(phrases))
        if candidates.vectors is not None and embedder is not None:
            cosine = embedder.embed(phrases) @ candidates.vectors.T
            low = config.relevance.semantic_floor
            high = config.relevance.semantic_ceiling
            semantic = np.clip((cosine - low) / (high - low), 0.0, 1.0)
            # Either kind of evidence suffices; both together count more.
            matched = 1.0 - (1.0 - matched) * (1.0 - semantic)
        relevance[:] = _per_reader(
            matched,
            np.asarray(owners),
            np.asarray(whole),
            n_readers,
            config.relevance.whole_text_weight,
        )

    _add_membership(
        relevance,
        candidates._authors,
        [p.authors for p in profiles],
        casefold=True,
        weight=config.relevance.author_boost,
    )
    _add_membership(
        relevance,
        candidates._categories,
        [p.categories for p in profiles],
        casefold=False,
        weight=config.relevance.category_boost,
    )

    for r, profile in enumerate(profiles):
        for ids, weight, sign in (
            (profile.more_like, config.relevance.more_like_weight, 1.0),
            (profile.fewer_like, config.relevance.fewer_like_weight, -1.0),
        ):
            found = [_feedback_row(candidates, i, feedback_rows) for i in ids]
            rows = [row for row in found if row is not None]
            if rows:
                stacked = (
                    sp.vstack(rows).tocsr()
                    if sp.issparse(rows[0])
                    else np.vstack([np.asarray(row) for row in rows])
                )
                relevance[r] += sign * weight * candidates.similarity(stacked).max(axis=0)
        for paper_id in profile.fewer_like:
            if paper_id in candidates.position:
                eligible[r, candidates.position[paper_id]] = False

    np.clip(relevance, 0.0, None, out=relevance)

    excluded_phrases: list[str] = []
    excluded_owners: list[int] = []
    for r, profile in enumerate(profiles):
        for keyword in profile.excluded:
            excluded_phrases.append(keyword)
            excluded_owners.append(r)
    if excluded_phrases:
        contains = candidates.lexical.contains(excluded_phrases)
        for row, r in enumerate(excluded_owners):
            eligible[r] &= ~contains[row]

    if sent is not None:
        for r, sent_ids in enumerate(sent):
            positions = [candidates.position[i] for i in sent_ids if i in candidates.position]
            eligible[r, positions] = False

    personal = np.array([p.personal for p in profiles], dtype=bool)
    selection = config.selection
    final = np.where(
        personal[:, None],
        selection.relevance_weight * relevance
        + selection.trending_weight * candidates.trending[None, :],
        candidates.trending[None, :],
    ).astype(np.float32)
    eligible[personal] &= relevance[personal] >= selection.min_relevance
    return final, relevance, eligible


def select_top(
    candidates: Candidates, final: np.ndarray, eligible: np.ndarray, limits: Sequence[int]
) -> list[list[int]]:
    """The best candidate positions per reader: eligible, one per near-duplicate group."""
    scores = np.where(eligible, final, -np.inf)
    for group in candidates.duplicate_groups:
        block = scores[:, group]
        best = block.argmax(axis=1)
        keep = np.full(block.shape, -np.inf, dtype=scores.dtype)
        rows = np.arange(len(block))
        keep[rows, best] = block[rows, best]
        scores[:, group] = keep
    width = min(max(limits, default=0), scores.shape[1])
    if width == 0:
        return [[] for _ in limits]
    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    ordered = np.take_along_axis(
        top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable"), axis=1
    )
    result = []
    for r, limit in enumerate(limits):
        row = ordered[r, :limit]
        result.append([int(c) for c in row if np.isfinite(scores[r, c])])
    return result


class TrendingRanker:
    """The production ranker: candidates of the window, cached while they are unchanged."""

    def __init__(
        self, *, window: timedelta, config: RankingConfig, embedder: Embedder | None = None
    ) -> None:
        self.window = window
        self.config = config
        self.embedder = embedder
        self._cache: tuple[tuple[object, ...], Candidates] | None = None

    def candidates(
        self, session: Session, *, now: datetime, since: datetime | None = None
    ) -> Candidates:
        start = since or now - self.window
        # Candidates change when papers or signals arrive, and the decay moves hourly.
        key = (
            start.replace(minute=0, second=0, microsecond=0),
            now.replace(minute=0, second=0, microsecond=0),
            *session.execute(
                select(func.count(Paper.id), func.max(Paper.id), func.max(Paper.updated_at)).where(
                    Paper.first_seen_at >= start, Paper.first_seen_at <= now
                )
            ).one(),
            session.scalar(select(func.max(PopularitySignal.id))),
        )
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        papers = list(
            session.scalars(
                select(Paper)
                .where(Paper.first_seen_at >= start, Paper.first_seen_at <= now)
                .order_by(Paper.id)
            )
        )
        trends_by_id = trends_for(
            session, {p.id: _appeared(p) for p in papers}, now=now, config=self.config.trending
        )
        vectors = (
            paper_vectors(session, [(p.id, p.title, p.abstract) for p in papers], self.embedder)
            if self.embedder is not None
            else None
        )
        candidates = Candidates.build(
            papers,
            [trends_by_id[p.id] for p in papers],
            now=now,
            config=self.config,
            vectors=vectors,
        )
        for paper in papers:
            session.expunge(paper)
        self._cache = (key, candidates)
        return candidates

    def rank(
        self,
        session: Session,
        profile: Profile,
        *,
        now: datetime,
        sent: set[int] | None = None,
        since: datetime | None = None,
    ) -> Selection:
        candidates = self.candidates(session, now=now, since=since)
        if not len(candidates):
            return Selection([], "no new papers for this reader")
        feedback_ids = [
            i for i in (*profile.more_like, *profile.fewer_like) if i not in candidates.position
        ]
        rows: dict[int, np.ndarray | sp.csr_matrix] = {}
        if feedback_ids:
            others = list(session.scalars(select(Paper).where(Paper.id.in_(feedback_ids))))
            vectors = (
                paper_vectors(session, [(p.id, p.title, p.abstract) for p in others], self.embedder)
                if candidates.vectors is not None and self.embedder is not None
                else None
            )
            reference = candidates.reference_rows(others, vectors)
            rows = {p.id: reference[k] for k, p in enumerate(others)}
        final, relevance, eligible = score_profiles(
            candidates,
            [profile],
            sent=[sent or set()],
            embedder=self.embedder,
            feedback_rows=rows,
        )
        positions = select_top(candidates, final, eligible, [profile.limit])[0]
        note = ""
        if not positions and profile.personal:
            if not self.config.selection.send_trending_when_nothing_relevant:
                return Selection([], "nothing relevant enough today")
            note = "nothing relevant enough: sent the overall trending list"
            positions = select_top(
                candidates, final, _unsent(candidates, sent, profile), [profile.limit]
            )[0]
            return Selection(
                [
                    explain(candidates, Profile(), c, float(candidates.trending[c]), None)
                    for c in positions
                ],
                note,
            )
        if not positions:
            return Selection([], "no new papers for this reader")
        return Selection(
            [
                explain(
                    candidates,
                    profile,
                    c,
                    float(final[0, c]),
                    float(relevance[0, c]) if profile.personal else None,
                    self.embedder,
                )
                for c in positions
            ],
            note,
        )

    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection:
        return self.rank(
            session,
            profile_of(session, subscriber),
            now=now,
            sent=sent_paper_ids(session, subscriber.id),
        )


def explain(
    candidates: Candidates,
    profile: Profile,
    position: int,
    score: float,
    relevance: float | None,
    embedder: Embedder | None = None,
) -> Pick:
    """The pick with its human reason: "matches: diffusion · 142 upvotes · trending +38 today"."""
    paper = candidates.papers[position]
    trend = candidates.trends[position]
    matched: list[str] = []
    phrases = profile.phrases
    if phrases:
        contains = candidates.lexical.contains(phrases)[:, position]
        matched += [p for p, hit in zip(phrases, contains, strict=True) if hit]
        if candidates.vectors is not None and len(matched) < len(phrases):
            matched += _close_phrases(candidates, phrases, matched, position, embedder)
    authors = {a.casefold() for a in profile.authors}
    matched += [f"by {name}" for name in paper.authors if name.casefold() in authors]
    matched += [f"in {c}" for c in paper.categories if c in set(profile.categories)]
    parts = []
    if matched:
        parts.append("matches: " + ", ".join(matched))
    elif profile.more_like and relevance:
        parts.append("like papers you asked more of")
    if trend.upvotes:
        parts.append(f"{trend.upvotes} upvote" + ("" if trend.upvotes == 1 else "s"))
    if trend.gained:
        parts.append(f"trending +{trend.gained} {candidates.velocity_label}")
    if trend.github_stars:
        parts.append(f"{trend.github_stars} GitHub stars")
    if not trend.has_signal:
        parts.append("new, not yet voted on")
    return Pick(
        paper=paper,
        reason=" · ".join(parts),
        upvotes=trend.upvotes,
        score=score,
        relevance=relevance,
    )


def _close_phrases(
    candidates: Candidates,
    phrases: list[str],
    matched: list[str],
    position: int,
    embedder: Embedder | None,
) -> list[str]:
    if embedder is None or candidates.vectors is None:
        return []
    rest = [p for p in phrases if p not in matched]
    cosine = embedder.embed(rest) @ candidates.vectors[position]
    # Close in meaning: a third of the way into the floor..ceiling band, where
    # a phrase starts to make a paper eligible on its own.
    low = candidates.config.relevance.semantic_floor
    high = candidates.config.relevance.semantic_ceiling
    bar = low + (high - low) / 3
    return [f"close to “{p}”" for p, c in zip(rest, cosine, strict=True) if c >= bar]


def _per_reader(
    matched: np.ndarray, owners: np.ndarray, whole: np.ndarray, n_readers: int, weight: float
) -> np.ndarray:
    """Readers x papers: the best phrase, blended with the whole text where there is one."""
    result = np.zeros((n_readers, matched.shape[1]), dtype=np.float32)
    parts = ~whole
    part_owners = owners[parts]
    if part_owners.size:
        starts = np.flatnonzero(np.r_[True, part_owners[1:] != part_owners[:-1]])
        result[part_owners[starts]] = np.maximum.reduceat(matched[parts], starts, axis=0)
    if whole.any():
        readers = owners[whole]
        result[readers] = (1.0 - weight) * result[readers] + weight * matched[whole]
    return result


def _feedback_row(
    candidates: Candidates,
    paper_id: int,
    rows: dict[int, np.ndarray | sp.csr_matrix] | None,
) -> np.ndarray | sp.csr_matrix | None:
    if paper_id in candidates.position:
        source = candidates._similarity_rows
        row = source[candidates.position[paper_id]]
        return row if sp.issparse(row) else np.asarray(row)[None, :]
    if rows and paper_id in rows:
        row = rows[paper_id]
        return row if sp.issparse(row) else np.asarray(row)[None, :]
    return None


def _unsent(candidates: Candidates, sent: set[int] | None, profile: Profile) -> np.ndarray:
    _, _, eligible = score_profiles(
        candidates,
        [Profile(excluded=profile.excluded, fewer_like=profile.fewer_like)],
        sent=[sent or set()],
    )
    return eligible


def _appeared(paper: Paper) -> datetime:
    if paper.featured_at is not None and paper.featured_at < paper.first_seen_at:
        return paper.featured_at
    return paper.first_seen_at


def _membership(values: list[list[str]]) -> tuple[dict[str, int], sp.csr_matrix]:
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, names in enumerate(values):
        for name in names:
            rows.append(row)
            cols.append(vocabulary.setdefault(name, len(vocabulary)))
    matrix = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(values), max(len(vocabulary), 1))
    )
    return vocabulary, matrix


def _add_membership(
    relevance: np.ndarray,
    membership: tuple[dict[str, int], sp.csr_matrix],
    wanted: Sequence[Sequence[str]],
    *,
    casefold: bool,
    weight: float,
) -> None:
    vocabulary, matrix = membership
    rows, cols = [], []
    for r, names in enumerate(wanted):
        for name in names:
            column = vocabulary.get(name.casefold() if casefold else name)
            if column is not None:
                rows.append(r)
                cols.append(column)
    if not rows:
        return
    query = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(wanted), matrix.shape[1]))
    relevance += weight * ((query @ matrix.T).toarray() > 0)
