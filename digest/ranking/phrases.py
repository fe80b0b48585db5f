"""The phrase table: each distinct interest phrase scored once against the candidates.

Readers share phrases ("diffusion", "language models"), so a send run scores a
phrase the first time a reader has it and every later reader reads its row; the
rows are also where selection finds which papers a phrase alone makes relevant
enough. Kept apart from selection because it outlives a call to it: the ranker
keeps one table per candidate set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from digest.ranking.candidates import Candidates, band, relevance_bar
from digest.ranking.semantic import Embedder


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
        return band(cosine, relevance.semantic_floor, relevance.semantic_ceiling)

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
        bar = relevance_bar(self.candidates.config)
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
