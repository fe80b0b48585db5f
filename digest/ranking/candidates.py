"""The candidate papers of one moment, indexed once to score every reader against.

:class:`Candidates` holds the papers that may go into digests with their trends,
trending scores (0..1), lexical index, embeddings when semantic matching is on and
near-duplicate groups, plus the bounded caches readers share (which candidates
contain a keyword, how close every candidate is to a paper given feedback). It is
built once per candidate set and read by the phrase table, selection and reasons;
so are the two scales defined here: similarities mapped onto 0..1 (:func:`band`)
and the relevance a paper needs (:func:`relevance_bar`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from config.ranking import RankingConfig
from digest.papers.models import Paper
from digest.ranking.lexical import LexicalIndex, unit_rows
from digest.ranking.trending import Trend, trending_scores, velocity_label

# Paper-to-paper cosine in the lexical space is lower than in the embedding space
# for the same closeness; these map it onto 0..1 like semantic_floor/ceiling do.
LEXICAL_SIMILARITY_FLOOR = 0.05
LEXICAL_SIMILARITY_CEILING = 0.40
# Papers whose closeness to every candidate is kept (a row of floats each); the
# keywords whose containing candidates are kept are capped alike.
MAX_CACHED_CLOSENESS = 5_000
# Near-duplicates in the lexical space (same work under two titles, v1 and v2).
LEXICAL_NEAR_DUPLICATE = 0.8


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
        # Which candidates each (casefolded) author wrote and each category holds,
        # for selection to match followed authors and categories in one product.
        self.by_author = _membership([[a.casefold() for a in p.authors] for p in self.papers])
        self.by_category = _membership([list(p.categories) for p in self.papers])
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
        ages = [(now - appeared(p)).total_seconds() / 3600 for p in papers]
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
            return band(
                raw, self.config.relevance.semantic_floor, self.config.relevance.semantic_ceiling
            )
        return band(raw, LEXICAL_SIMILARITY_FLOOR, LEXICAL_SIMILARITY_CEILING)

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


def relevance_bar(config: RankingConfig) -> float:
    """``min_relevance``, above zero: a paper with no relevance at all is never picked."""
    return max(config.selection.min_relevance, 1e-6)


def band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Similarities onto 0..1: at or below ``low`` is 0, at or above ``high`` is 1."""
    return np.clip((values - low) / (high - low), 0.0, 1.0)


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


def appeared(paper: Paper) -> datetime:
    """When a paper appeared, which its age counts from: featured or first seen, the earlier."""
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
