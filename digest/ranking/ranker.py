"""Choosing papers for each reader: relevance to what they asked for, blended
with what is trending, never a paper they were already sent, no near-duplicates.

Scoring works on many readers at once (matrices of readers x candidate papers),
so a batch of a hundred thousand readers costs a few matrix products; the
per-reader :class:`TrendingRanker` used by the delivery path is the same code
with a batch of one. Parameters: ``config/ranking.toml``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.ranking import RankingConfig
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.papers.models import Paper, PopularitySignal
from digest.ranking.lexical import LexicalIndex, split_phrases, stems, unit_rows
from digest.ranking.semantic import Embedder, paper_vectors
from digest.ranking.trending import Trend, trending_scores, trends_for, velocity_label
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber

log = logging.getLogger(__name__)

# Paper-to-paper cosine in the lexical space is lower than in the embedding space
# for the same closeness; these map it onto 0..1 like semantic_floor/ceiling do.
LEXICAL_SIMILARITY_FLOOR = 0.05
LEXICAL_SIMILARITY_CEILING = 0.40
# Distinct interest phrases kept scored per process (each costs a row of floats
# per candidate, 8 kB for 2,000 candidates).
MAX_CACHED_PHRASES = 20_000
# Papers whose closeness to every candidate is kept (a row of floats each).
MAX_CACHED_CLOSENESS = 5_000
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

    @cached_property
    def phrases(self) -> list[str]:
        # "none", "-", "n/a": phrases with no word to match are not interests.
        return [p for p in split_phrases(self.interests) if any(len(w) > 1 for w in stems(p))]

    @property
    def personal(self) -> bool:
        """Whether the reader said what they want (otherwise: the overall trending list,
        reordered by their "more / fewer like this")."""
        return bool(self.phrases or self.authors or self.categories)


def profile_of(session: Session, subscriber: Subscriber) -> Profile:
    [profile] = profiles_of(session, [subscriber])
    return profile


def profiles_of(session: Session, subscribers: Sequence[Subscriber]) -> list[Profile]:
    """Readers' profiles: their preferences and their "more / fewer like this"."""
    feedback: dict[int, list[tuple[int, FeedbackKind]]] = {s.id: [] for s in subscribers}
    ids = list(feedback)
    for offset in range(0, len(ids), 5000):
        for subscriber_id, paper_id, kind in session.execute(
            select(Feedback.subscriber_id, Feedback.paper_id, Feedback.kind)
            .where(Feedback.subscriber_id.in_(ids[offset : offset + 5000]))
            .order_by(Feedback.created_at, Feedback.paper_id)
        ):
            feedback[subscriber_id].append((paper_id, kind))
    return [
        Profile(
            interests=s.interests,
            authors=tuple(s.followed_authors),
            categories=tuple(s.categories),
            excluded=tuple(s.excluded_keywords),
            more_like=tuple(p for p, k in feedback[s.id] if k == FeedbackKind.MORE),
            fewer_like=tuple(p for p, k in feedback[s.id] if k == FeedbackKind.FEWER),
            limit=s.papers_per_digest,
        )
        for s in subscribers
    ]


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
    return sent_paper_ids_of(session, [subscriber_id]).get(subscriber_id, set())


def sent_paper_ids_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, set[int]]:
    """The papers each reader was already sent (what "never twice" is checked against)."""
    sent: dict[int, set[int]] = {}
    ids = list(subscriber_ids)
    for offset in range(0, len(ids), 5000):
        for subscriber_id, paper_id in session.execute(
            select(Delivery.subscriber_id, DeliveryPaper.paper_id)
            .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
            .where(
                Delivery.subscriber_id.in_(ids[offset : offset + 5000]),
                Delivery.status == DeliveryStatus.SENT,
            )
        ):
            sent.setdefault(subscriber_id, set()).add(paper_id)
    return sent


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
    duplicate_group_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.position = {p.id: i for i, p in enumerate(self.papers)}
        self._closeness: dict[int, np.ndarray] = {}
        self._containing: dict[str, np.ndarray] = {}
        ids = np.fromiter((p.id for p in self.papers), dtype=np.int64, count=len(self.papers))
        self.sorted_positions = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.sorted_positions]
        self._authors = _membership([[a.casefold() for a in p.authors] for p in self.papers])
        self._categories = _membership([list(p.categories) for p in self.papers])
        self._similarity_rows: np.ndarray | sp.csr_matrix
        # Transposed once: a product with it is what feedback costs per batch.
        self._similarity_columns: np.ndarray | sp.csr_matrix
        if self.vectors is not None:
            self._similarity_rows = self.vectors
            self._similarity_columns = np.ascontiguousarray(self.vectors.T)
        else:
            self._similarity_rows = unit_rows(self.lexical.weights)
            self._similarity_columns = self._similarity_rows.T.tocsr()
        self.duplicate_groups = self._near_duplicates()
        self.duplicate_group_of = np.full(len(self.papers), -1, dtype=np.int64)
        for number, group in enumerate(self.duplicate_groups):
            self.duplicate_group_of[group] = number

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
        raw = references @ self._similarity_columns
        raw = raw.toarray() if sp.issparse(raw) else np.asarray(raw)
        if self.vectors is not None:
            return _band(
                raw, self.config.relevance.semantic_floor, self.config.relevance.semantic_ceiling
            )
        return _band(raw, LEXICAL_SIMILARITY_FLOOR, LEXICAL_SIMILARITY_CEILING)

    def containing(self, keywords: Sequence[str]) -> list[np.ndarray]:
        """For each keyword, the positions of the candidates that contain it."""
        found = {k: self._containing[k] for k in keywords if k in self._containing}
        missing = [k for k in dict.fromkeys(keywords) if k not in found]
        if missing:
            for keyword, row in zip(missing, self.lexical.contains(missing), strict=True):
                found[keyword] = np.flatnonzero(row)
            # Bounded: a full cache starts again (the answer above is already complete).
            if len(self._containing) + len(missing) > MAX_CACHED_CLOSENESS:
                self._containing.clear()
            self._containing.update((k, found[k]) for k in missing)
        return [found[k] for k in keywords]

    def closeness_rows(
        self,
        paper_ids: Sequence[int],
        feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None,
    ) -> dict[int, np.ndarray]:
        """Closeness of every candidate to each paper (those that can be compared),
        remembered: the same few papers get feedback from many readers."""
        known = {i: self._closeness[i] for i in paper_ids if i in self._closeness}
        missing = [
            i
            for i in dict.fromkeys(paper_ids)
            if i not in known and (i in self.position or (feedback_rows or {}).get(i) is not None)
        ]
        if missing:
            rows = [_feedback_row(self, i, feedback_rows) for i in missing]
            stacked = (
                sp.vstack(rows).tocsr()
                if sp.issparse(rows[0])
                else np.vstack([np.asarray(row) for row in rows])
            )
            for paper_id, row in zip(missing, self.similarity(stacked), strict=True):
                known[paper_id] = row.astype(np.float32)
            # Bounded: a full cache starts again (the answer above is already complete).
            if len(self._closeness) + len(missing) > MAX_CACHED_CLOSENESS:
                self._closeness.clear()
            self._closeness.update((i, known[i]) for i in missing)
        return known

    def reference_rows(
        self, papers: Sequence[Paper], vectors: np.ndarray | None
    ) -> np.ndarray | sp.csr_matrix:
        """Rows comparable with the candidates' for papers that may not be candidates."""
        if self.vectors is not None:
            assert vectors is not None
            return vectors
        return unit_rows(
            self.lexical.transform([p.title for p in papers], [p.abstract for p in papers])
        )


class PhraseTable:
    """Interest phrases scored against the candidates, each distinct phrase once.

    A reader's relevance to a paper is their best phrase's match, blended with the
    match of all their phrases together (``whole_text_weight``): a paper touching
    several of the reader's interests beats one that hits a single one. The
    whole-text match is computed from the phrases' own scores (lexically, the
    phrases' matches weighted by their ideal weights; semantically, the cosine to
    the mean of the phrase vectors), so no reader's text is scored twice.
    """

    def __init__(self, candidates: Candidates, embedder: Embedder | None) -> None:
        self.candidates = candidates
        self.embedder = embedder if candidates.vectors is not None else None
        self.index: dict[str, int] = {}
        n = len(candidates)
        # Each phrase's matches times its ideal weight: summed over a reader's
        # phrases and divided by their ideal weights, the whole text's match.
        self.weighted_lexical = np.zeros((0, n), dtype=np.float32)
        self.ideal = np.zeros(0, dtype=np.float64)
        self.cosine = np.zeros((0, n), dtype=np.float32)
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.matched = np.zeros((0, n), dtype=np.float32)
        self.hits: list[np.ndarray] = []

    def semantic(self, cosine: np.ndarray) -> np.ndarray:
        relevance = self.candidates.config.relevance
        return _band(cosine, relevance.semantic_floor, relevance.semantic_ceiling)

    def ensure(self, phrases: Sequence[str]) -> None:
        new = [p for p in dict.fromkeys(phrases) if p not in self.index]
        if not new:
            return
        lexical_index = self.candidates.lexical
        query, ideal = lexical_index.query_matrix(new)
        lexical = lexical_index.scores(query).astype(np.float32)
        matched: np.ndarray = lexical
        if self.embedder is not None:
            assert self.candidates.vectors is not None
            vectors = self.embedder.embed(new).astype(np.float32)
            cosine = vectors @ self.candidates.vectors.T
            # Either kind of evidence suffices; both together count more.
            matched = 1.0 - (1.0 - lexical) * (1.0 - self.semantic(cosine))
            self.cosine = np.vstack([self.cosine, cosine])
            self.vectors = vectors if not len(self.vectors) else np.vstack([self.vectors, vectors])
        for phrase in new:
            self.index[phrase] = len(self.index)
        self.weighted_lexical = np.vstack(
            [self.weighted_lexical, (ideal[:, None] * lexical).astype(np.float32)]
        )
        self.ideal = np.concatenate([self.ideal, ideal])
        self.matched = np.vstack([self.matched, matched.astype(np.float32)])
        self._add_hits(matched)

    def _add_hits(self, matched: np.ndarray) -> None:
        """Where each new phrase alone makes a paper relevant enough (at or above
        ``min_relevance``), best match first."""
        bar = _relevance_bar(self.candidates.config)
        for row in matched:
            chosen = np.flatnonzero(row >= bar)
            self.hits.append(chosen[np.argsort(-row[chosen], kind="stable")].astype(np.int64))

    def hit_pattern(self, slots: np.ndarray, blocked: np.ndarray) -> sp.csr_matrix:
        """Readers x candidates: 1 where one of the reader's phrases proposes the paper.

        A phrase proposes its best ``phrase_candidates`` matches, plus as many as
        the reader has blocked papers (sent, excluded), so that what they were
        already sent never leaves them short.
        """
        rows, ks = np.nonzero(slots >= 0)
        keep = self.candidates.config.selection.phrase_candidates + blocked[rows]
        found = [
            self.hits[i][:k] for i, k in zip(slots[rows, ks].tolist(), keep.tolist(), strict=True)
        ]
        sizes = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
        columns = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        pattern = sp.csr_matrix(
            (np.ones(len(columns), dtype=np.float32), (np.repeat(rows, sizes), columns)),
            shape=(slots.shape[0], len(self.candidates)),
        )
        pattern.sum_duplicates()
        return pattern

    def ideal_totals(self, slots: np.ndarray) -> np.ndarray:
        """Per reader, the sum of their phrases' ideal weights (1 when none)."""
        totals = np.where(slots >= 0, self.ideal[np.maximum(slots, 0)], 0.0).sum(axis=1)
        totals[totals == 0] = 1.0
        return np.asarray(totals, dtype=np.float32)

    def mean_norms(self, slots: np.ndarray) -> np.ndarray:
        """Per reader, the length of the sum of their phrase vectors (1 when none)."""
        total = np.zeros((slots.shape[0], self.vectors.shape[1]), dtype=np.float32)
        for k in range(slots.shape[1]):
            has = slots[:, k] >= 0
            total[has] += self.vectors[slots[has, k]]
        norms: np.ndarray = np.linalg.norm(total, axis=1)
        norms[norms == 0] = 1.0
        return norms


@dataclass(frozen=True)
class Choice:
    """A selected candidate for one reader: its position, final score and relevance."""

    position: int
    score: float
    relevance: float | None


@dataclass(frozen=True)
class Selected:
    """Picks of a batch of readers as arrays, grouped by reader, best first."""

    readers: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    # NaN for readers without a personal profile.
    relevance: np.ndarray

    def __len__(self) -> int:
        return len(self.readers)

    def of(self, reader: int) -> list[Choice]:
        start, end = np.searchsorted(self.readers, [reader, reader + 1])
        return [
            Choice(
                int(self.positions[i]),
                float(self.scores[i]),
                None if np.isnan(self.relevance[i]) else float(self.relevance[i]),
            )
            for i in range(start, end)
        ]


def select_for(
    candidates: Candidates,
    profiles: Sequence[Profile],
    *,
    sent: Sequence[Iterable[int]] | None = None,
    embedder: Embedder | None = None,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
    phrases: PhraseTable | None = None,
) -> Selected:
    """Each reader's picks, best first: at most ``profile.limit``, eligible only.

    ``feedback_rows`` maps a paper id named in some profile's feedback to its
    reference row (see :meth:`Candidates.reference_rows`); candidates need none.
    ``phrases`` keeps interest phrases scored by earlier calls (readers share them).

    A reader who said what they want can get a paper when one signal alone makes
    it relevant enough (one of their phrases, a followed author or category, or
    closeness to a paper they asked more of reaches ``min_relevance``) and the
    whole relevance, all signals together, stays at or above it. Only those
    (reader, paper) cells are scored, so a batch costs what its matches cost,
    not readers x papers.
    """
    table = phrases if phrases is not None else PhraseTable(candidates, embedder)
    sent_lists = list(sent) if sent is not None else [() for _ in profiles]
    flags = np.fromiter((p.personal for p in profiles), dtype=bool, count=len(profiles))
    parts = []
    for subset, personal in ((np.flatnonzero(flags), True), (np.flatnonzero(~flags), False)):
        if not subset.size:
            continue
        chosen = [profiles[r] for r in subset.tolist()]
        chosen_sent = [sent_lists[r] for r in subset.tolist()]
        rows, cols, final, relevance = (
            _select_personal(candidates, chosen, chosen_sent, table, feedback_rows)
            if personal
            else _select_trending(candidates, chosen, chosen_sent, feedback_rows)
        )
        parts.append((subset[rows], cols, final, relevance))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Selected(empty, empty, np.zeros(0), np.zeros(0))
    readers = np.concatenate([p[0] for p in parts])
    # Stable: each reader's picks stay in score order.
    order = np.argsort(readers, kind="stable")
    return Selected(
        readers[order],
        np.concatenate([p[1] for p in parts])[order],
        np.concatenate([p[2] for p in parts])[order],
        np.concatenate([p[3] for p in parts])[order],
    )


def select_in_chunks(
    candidates: Candidates,
    profiles: Sequence[Profile],
    *,
    sent: Sequence[Iterable[int]] | None = None,
    embedder: Embedder | None = None,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
    phrases: PhraseTable | None = None,
    chunk: int = 2000,
    workers: int = 2,
) -> Iterator[tuple[int, Selected]]:
    """:func:`select_for` over a large batch: ``(offset, picks)`` per chunk of readers.

    Memory is bounded by the chunk; chunks run on ``workers`` threads (numpy and
    scipy release the GIL in the heavy parts). Everything the chunks share is
    computed first, so that the threads only read it.
    """
    table = phrases if phrases is not None else PhraseTable(candidates, embedder)
    table.ensure([p for profile in profiles for p in profile.phrases])
    candidates.containing([k for profile in profiles for k in profile.excluded])
    candidates.closeness_rows(
        [i for p in profiles for i in (*p.more_like, *p.fewer_like)], feedback_rows
    )
    sent_lists = list(sent) if sent is not None else [() for _ in profiles]

    def run(offset: int) -> tuple[int, Selected]:
        end = offset + chunk
        return offset, select_for(
            candidates,
            profiles[offset:end],
            sent=sent_lists[offset:end],
            feedback_rows=feedback_rows,
            phrases=table,
        )

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        yield from pool.map(run, range(0, len(profiles), chunk))


Cells = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _select_personal(
    candidates: Candidates,
    profiles: Sequence[Profile],
    sent: Sequence[Iterable[int]],
    table: PhraseTable,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None,
) -> Cells:
    config = candidates.config
    n = len(candidates)
    n_readers = len(profiles)
    lists = [p.phrases for p in profiles]
    table.ensure([p for phrases in lists for p in phrases])
    width = max((len(phrases) for phrases in lists), default=0)
    # slots[r, k]: the table row of reader r's k-th phrase, -1 past their last.
    slots = np.full((n_readers, max(width, 1)), -1, dtype=np.int64)
    for r, phrases in enumerate(lists):
        slots[r, : len(phrases)] = [table.index[p] for p in phrases]

    # Where each reader may find something relevant enough: the union of sparse
    # patterns (a sparse sum merges sorted rows in linear time), each with its
    # own flag so that one sum says which signals a cell has.
    authors = _flagged(
        _membership_hits(candidates._authors, [p.authors for p in profiles], True), _AUTHOR
    )
    categories = _flagged(
        _membership_hits(candidates._categories, [p.categories for p in profiles], False),
        _CATEGORY,
    )
    blocked = _blocked(candidates, profiles, sent)
    pattern = authors + categories
    if width:
        per_reader = np.bincount(blocked // n, minlength=n_readers) if n else np.zeros(n_readers)
        pattern = pattern + _flagged(table.hit_pattern(slots, per_reader), _PHRASE)
    more_owners, more = _closeness(candidates, profiles, "more_like", feedback_rows)
    fewer_owners, fewer = _closeness(candidates, profiles, "fewer_like", feedback_rows)
    bar = _relevance_bar(config)
    if len(more_owners):
        close_rows, close_cols = np.nonzero(config.relevance.more_like_weight * more >= bar)
        pattern = pattern + sp.csr_matrix(
            (
                np.full(len(close_rows), _MORE_LIKE, dtype=np.float32),
                (more_owners[close_rows], close_cols),
            ),
            shape=pattern.shape,
        )
    pattern = pattern + sp.csr_matrix(
        (np.full(len(blocked), _BLOCKED, dtype=np.float32), (blocked // n, blocked % n)),
        shape=pattern.shape,
    )
    pattern = sp.csr_matrix(pattern)
    pattern.sort_indices()
    rows = np.repeat(np.arange(n_readers, dtype=np.int64), np.diff(pattern.indptr))
    cols = pattern.indices.astype(np.int64)
    flags = pattern.data.astype(np.int64)
    # Blocked cells go, and so do cells that are only blocked.
    usable = (flags < _BLOCKED) & (flags > 0)
    rows, cols, flags = rows[usable], cols[usable], flags[usable]

    # Relevance at those cells: the best phrase ...
    relevance = np.zeros(len(rows), dtype=np.float32)
    count = (slots >= 0).sum(axis=1)
    for k in range(slots.shape[1]):
        phrase = slots[rows, k]
        has = np.flatnonzero(phrase >= 0)
        relevance[has] = np.maximum(relevance[has], table.matched[phrase[has], cols[has]])
    # ... blended with all the phrases together, for readers with several.
    several = np.flatnonzero(count[rows] > 1)
    if several.size:
        share = config.relevance.whole_text_weight
        at_cols, at_rows = cols[several], rows[several]
        weighted = np.zeros(len(several), dtype=np.float32)
        cosine = np.zeros(len(several), dtype=np.float32)
        for k in range(slots.shape[1]):
            phrase = slots[at_rows, k]
            has = np.flatnonzero(phrase >= 0)
            weighted[has] += table.weighted_lexical[phrase[has], at_cols[has]]
            if table.embedder is not None:
                cosine[has] += table.cosine[phrase[has], at_cols[has]]
        whole = weighted / table.ideal_totals(slots)[at_rows]
        if table.embedder is not None:
            norms = table.mean_norms(slots)[at_rows]
            whole = 1.0 - (1.0 - whole) * (1.0 - table.semantic(cosine / norms))
        relevance[several] = (1.0 - share) * relevance[several] + share * whole
    relevance += config.relevance.author_boost * ((flags & _AUTHOR) > 0)
    relevance += config.relevance.category_boost * ((flags & _CATEGORY) > 0)
    relevance += _feedback_at(
        config, n_readers, rows, cols, (more_owners, more), (fewer_owners, fewer)
    )
    np.clip(relevance, 0.0, None, out=relevance)

    eligible = relevance >= bar
    rows, cols, relevance = rows[eligible], cols[eligible], relevance[eligible]
    final = (
        config.selection.relevance_weight * relevance
        + config.selection.trending_weight * candidates.trending[cols]
    )
    return _best_per_reader(candidates, profiles, rows, cols, final, relevance)


# Which signals put a (reader, paper) cell in play; blocked outweighs them all.
_PHRASE, _AUTHOR, _CATEGORY, _MORE_LIKE, _BLOCKED = 1, 2, 4, 8, 16


def _flagged(matrix: sp.csr_matrix, flag: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    matrix.data[:] = flag
    return matrix


def _select_trending(
    candidates: Candidates,
    profiles: Sequence[Profile],
    sent: Sequence[Iterable[int]],
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
) -> Cells:
    """Readers without interests: the overall trending list, minus what they excluded
    or were sent. "More / fewer like this" reorders it (blended as relevance is),
    but never shortens it: such a reader still gets a full digest."""
    n = len(candidates)
    config = candidates.config
    blocked = _blocked(candidates, profiles, sent)
    more_owners, more = _closeness(candidates, profiles, "more_like", feedback_rows)
    fewer_owners, fewer = _closeness(candidates, profiles, "fewer_like", feedback_rows)
    with_feedback = np.union1d(more_owners, fewer_owners).astype(np.int64)
    # Without feedback only the head of the list can matter to anyone.
    order = np.argsort(-candidates.trending, kind="stable")
    longest = max((p.limit for p in profiles), default=0)
    per_reader = np.bincount(blocked // n, minlength=len(profiles)) if blocked.size else None
    duplicates = sum(len(g) for g in candidates.duplicate_groups)
    head = min(n, longest + (int(per_reader.max()) if per_reader is not None else 0) + duplicates)
    plain = np.setdiff1d(np.arange(len(profiles)), with_feedback)
    rows = np.concatenate([np.repeat(plain, head), np.repeat(with_feedback, n)])
    cols = np.concatenate(
        [np.tile(order[:head], len(plain)), np.tile(np.arange(n), len(with_feedback))]
    )
    order_rows = np.argsort(rows, kind="stable")
    rows, cols = rows[order_rows], cols[order_rows]
    keep = ~np.isin(rows * n + cols, blocked)
    rows, cols = rows[keep], cols[keep]
    final = candidates.trending[cols].astype(np.float64)
    relevance = np.full(len(rows), np.nan)
    if with_feedback.size:
        liked = _feedback_at(
            config, len(profiles), rows, cols, (more_owners, more), (fewer_owners, fewer)
        )
        touched = np.isin(rows, with_feedback)
        final[touched] = (
            config.selection.relevance_weight * liked[touched]
            + config.selection.trending_weight * final[touched]
        )
        relevance[touched & (liked > 0)] = liked[touched & (liked > 0)]
    return _best_per_reader(candidates, profiles, rows, cols, final, relevance)


def _best_per_reader(
    candidates: Candidates,
    profiles: Sequence[Profile],
    rows: np.ndarray,
    cols: np.ndarray,
    final: np.ndarray,
    relevance: np.ndarray,
) -> Cells:
    """Top ``limit`` cells per reader by final score, one per near-duplicate group."""
    # Rows ascending, then score descending (a score is below 8: relevance plus
    # boosts, blended with trending); cells arrive in (row, column) order, so a
    # stable sort breaks ties by column.
    order = np.argsort(rows * 16.0 + (8.0 - np.clip(final, -7.999, 7.999)), kind="stable")
    rows, cols, final, relevance = rows[order], cols[order], final[order], relevance[order]
    group = candidates.duplicate_group_of[cols]
    grouped = np.flatnonzero(group >= 0)
    if grouped.size:
        # Cells are in score order within a reader: the first of a group is its best.
        pairs = rows[grouped] * (len(candidates.duplicate_groups) + 1) + group[grouped]
        _, first = np.unique(pairs, return_index=True)
        keep = np.ones(len(rows), dtype=bool)
        keep[grouped] = False
        keep[grouped[first]] = True
        rows, cols, final, relevance = rows[keep], cols[keep], final[keep], relevance[keep]
    starts = np.searchsorted(rows, np.arange(len(profiles)))
    rank = np.arange(len(rows)) - starts[rows]
    limits = np.fromiter((p.limit for p in profiles), dtype=np.int64, count=len(profiles))
    keep = rank < limits[rows]
    return rows[keep], cols[keep], final[keep], relevance[keep]


def _feedback_at(
    config: RankingConfig,
    n_readers: int,
    rows: np.ndarray,
    cols: np.ndarray,
    more: tuple[np.ndarray, np.ndarray],
    fewer: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """At each (reader, paper) cell: + closeness to what the reader asked more of,
    - closeness to what they asked fewer of, weighted (see :func:`_closeness`)."""
    result = np.zeros(len(rows), dtype=np.float32)
    for (owners, closeness), weight in (
        (more, config.relevance.more_like_weight),
        (fewer, -config.relevance.fewer_like_weight),
    ):
        if len(owners):
            local = np.full(n_readers, -1, dtype=np.int64)
            local[owners] = np.arange(len(owners))
            has = np.flatnonzero(local[rows] >= 0)
            result[has] += weight * closeness[local[rows[has]], cols[has]]
    return result


def _relevance_bar(config: RankingConfig) -> float:
    """``min_relevance``, above zero: a paper with no relevance at all is never picked."""
    return max(config.selection.min_relevance, 1e-6)


def _band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Similarities onto 0..1: at or below ``low`` is 0, at or above ``high`` is 1."""
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _membership_hits(
    membership: tuple[dict[str, int], sp.csr_matrix],
    wanted: Sequence[Sequence[str]],
    casefold: bool,
) -> sp.csr_matrix:
    vocabulary, matrix = membership
    rows, cols = [], []
    for r, names in enumerate(wanted):
        for name in names:
            column = vocabulary.get(name.casefold() if casefold else name)
            if column is not None:
                rows.append(r)
                cols.append(column)
    query = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(wanted), matrix.shape[1]),
    )
    return (query @ matrix.T).tocsr()


def _closeness(
    candidates: Candidates,
    profiles: Sequence[Profile],
    kind: str,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Readers with feedback of this kind, and each one's closeness (0..1) of every
    candidate to the nearest paper they gave it for."""
    owners: list[int] = []
    ids: list[int] = []
    for r, profile in enumerate(profiles):
        for paper_id in getattr(profile, kind):
            owners.append(r)
            ids.append(paper_id)
    rows = candidates.closeness_rows(ids, feedback_rows)
    known = [k for k, paper_id in enumerate(ids) if paper_id in rows]
    if not known:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(candidates)), dtype=np.float32)
    similar = np.vstack([rows[ids[k]] for k in known])
    owner_array = np.asarray([owners[k] for k in known])
    starts = np.flatnonzero(np.r_[True, owner_array[1:] != owner_array[:-1]])
    return owner_array[starts], np.maximum.reduceat(similar, starts, axis=0)


def _blocked(
    candidates: Candidates, profiles: Sequence[Profile], sent: Sequence[Iterable[int]]
) -> np.ndarray:
    """Cells no reader may get: papers already sent or asked fewer of, with their
    near-duplicates (the same work listed again), and papers excluded by keyword,
    as reader * n + paper keys (repeats possible)."""
    n = len(candidates)
    ids = [(*ids, *profile.fewer_like) for profile, ids in zip(profiles, sent, strict=True)]
    counts = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(counts.sum()))
    owners = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
    # Paper ids to candidate positions; ids that are not candidates block nothing.
    found = np.searchsorted(candidates.sorted_ids, flat)
    found = np.minimum(found, max(n - 1, 0))
    hit = candidates.sorted_ids[found] == flat if n else np.zeros(len(flat), dtype=bool)
    owners, positions = owners[hit], candidates.sorted_positions[found[hit]]
    blocked = [owners * n + positions]
    groups = candidates.duplicate_group_of[positions]
    grouped = groups >= 0
    if grouped.any():
        members = [candidates.duplicate_groups[g] for g in groups[grouped].tolist()]
        sizes = np.fromiter((len(m) for m in members), dtype=np.int64, count=len(members))
        blocked.append(np.repeat(owners[grouped], sizes) * n + np.concatenate(members))
    excluded = [(r, k) for r, p in enumerate(profiles) for k in p.excluded]
    if excluded:
        containing = candidates.containing([k for _, k in excluded])
        sizes = np.fromiter((len(c) for c in containing), dtype=np.int64, count=len(containing))
        excluding = np.asarray([r for r, _ in excluded], dtype=np.int64)
        blocked.append(np.repeat(excluding, sizes) * n + np.concatenate(containing))
    return np.concatenate(blocked)


class TrendingRanker:
    """The production ranker: candidates of the window, cached while they are unchanged."""

    def __init__(
        self, *, window: timedelta, config: RankingConfig, embedder: Embedder | None = None
    ) -> None:
        self.window = window
        self.config = config
        self.embedder = embedder
        self._cache: tuple[tuple[object, ...], Candidates] | None = None
        self._phrases: PhraseTable | None = None
        self._prepared: dict[int, tuple[datetime, Selection]] = {}

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
        self._phrases = None
        return candidates

    def phrase_table(self, candidates: Candidates) -> PhraseTable:
        """Phrases scored for these candidates, shared by the readers of a send run."""
        if (
            self._phrases is None
            or self._phrases.candidates is not candidates
            or len(self._phrases.index) > MAX_CACHED_PHRASES
        ):
            self._phrases = PhraseTable(candidates, self.embedder)
        return self._phrases

    def rank(
        self,
        session: Session,
        profile: Profile,
        *,
        now: datetime,
        sent: set[int] | None = None,
        since: datetime | None = None,
    ) -> Selection:
        [selection] = self.rank_many(session, [profile], now=now, sent=[sent or set()], since=since)
        return selection

    def rank_many(
        self,
        session: Session,
        profiles: Sequence[Profile],
        *,
        now: datetime,
        sent: Sequence[set[int]],
        since: datetime | None = None,
    ) -> list[Selection]:
        """Selections for many readers at once: one pass over the candidates."""
        candidates = self.candidates(session, now=now, since=since)
        if not len(candidates):
            return [Selection([], "no new papers for this reader") for _ in profiles]
        feedback_ids = {
            i
            for profile in profiles
            for i in (*profile.more_like, *profile.fewer_like)
            if i not in candidates.position
        }
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
        selected = select_for(
            candidates,
            profiles,
            sent=sent,
            embedder=self.embedder,
            feedback_rows=rows,
            phrases=self.phrase_table(candidates),
        )
        selections = []
        for r, profile in enumerate(profiles):
            choices = selected.of(r)
            if choices:
                selections.append(
                    Selection(
                        [
                            explain(
                                candidates, profile, c.position, c.score, c.relevance, self.embedder
                            )
                            for c in choices
                        ]
                    )
                )
            elif not profile.personal:
                selections.append(Selection([], "no new papers for this reader"))
            elif not self.config.selection.send_trending_when_nothing_relevant:
                selections.append(Selection([], "nothing relevant enough today"))
            else:
                general = Profile(
                    excluded=profile.excluded, fewer_like=profile.fewer_like, limit=profile.limit
                )
                fallback = select_for(candidates, [general], sent=[sent[r]]).of(0)
                selections.append(
                    Selection(
                        [explain(candidates, general, c.position, c.score, None) for c in fallback],
                        "nothing relevant enough: sent the overall trending list",
                    )
                )
        return selections

    def prepare(
        self, session: Session, subscribers: Sequence[Subscriber], *, now: datetime
    ) -> None:
        """Rank a batch of readers in one pass; their :meth:`pick` then returns the result.

        For a batch about to be sent: ``pick`` falls back to ranking alone any
        reader not prepared, or prepared for another moment.
        """
        ids = [s.id for s in subscribers]
        profiles = profiles_of(session, subscribers)
        sent = sent_paper_ids_of(session, ids)
        selections = self.rank_many(
            session, profiles, now=now, sent=[sent.get(i, set()) for i in ids]
        )
        self._prepared = {i: (now, selection) for i, selection in zip(ids, selections, strict=True)}

    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection:
        prepared = self._prepared.pop(subscriber.id, None)
        if prepared is not None and prepared[0] == now:
            return prepared[1]
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
        containing = candidates.containing(phrases)
        matched += [p for p, found in zip(phrases, containing, strict=True) if position in found]
        if candidates.vectors is not None and len(matched) < len(phrases):
            matched += _close_phrases(candidates, phrases, matched, position, embedder)
    authors = {a.casefold() for a in profile.authors}
    matched += [f"by {name}" for name in paper.authors if name.casefold() in authors]
    matched += [f"in {c}" for c in paper.categories if c in set(profile.categories)]
    parts = []
    if matched:
        parts.append("matches: " + ", ".join(matched))
    elif profile.more_like and _close_to_liked(candidates, profile, position):
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


def _close_to_liked(candidates: Candidates, profile: Profile, position: int) -> bool:
    """Whether closeness to a paper the reader asked more of alone makes this one relevant."""
    config = candidates.config
    bar = _relevance_bar(config)
    rows = candidates.closeness_rows(list(profile.more_like), None)
    return any(config.relevance.more_like_weight * row[position] >= bar for row in rows.values())


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
