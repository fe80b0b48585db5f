"""Lexical relevance: BM25F over titles and abstracts, with phrases.

Texts become stemmed words (English stop words dropped) and the pairs of words
that stand next to each other, so "image editing" matches "editing images" a
little and "image editing" a lot. Title and abstract are separate fields: a word
in the title weighs ``title_weight`` times a word in the abstract, each field
normalised by its own length (BM25F).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import snowballstemmer

from config.ranking import RelevanceConfig
from digest.ranking.stop_words import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[^\W_]+")
_STEMMER = snowballstemmer.stemmer("english")
# Joins two adjacent stems into one pair term (stems never contain a space).
_PAIR = " "


def split_phrases(interests: str) -> list[str]:
    """Interests as typed in the form: comma, semicolon or newline separated phrases."""
    terms = (t.strip().casefold() for t in re.split(r"[,;\n]", _normalised(interests)))
    return list(dict.fromkeys(t for t in terms if t))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def _normalised(text: str) -> str:
    # "é" typed as e + combining accent (pasted from a PDF, macOS) is the "é" of a title.
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _stop_words() -> frozenset[str]:
    # Reader interests are often a list of short phrases; "for" and "with" and the
    # like carry nothing, but short technical words ("3d", "rl", "llm") do.
    return ENGLISH_STOP_WORDS


def stems(text: str) -> list[str]:
    stop = _stop_words()
    return [_stem(w) for w in _WORD.findall(_normalised(text).casefold()) if w not in stop]


def terms(text: str) -> list[str]:
    """Stemmed words and adjacent pairs: the units that are indexed and matched."""
    words = stems(text)
    return words + [a + _PAIR + b for a, b in itertools.pairwise(words)]


def is_pair(term: str) -> bool:
    return _PAIR in term


class LexicalIndex:
    """The BM25F weights of a fixed set of papers, ready to score many queries at once."""

    def __init__(
        self, titles: Sequence[str], abstracts: Sequence[str], config: RelevanceConfig
    ) -> None:
        self.config = config
        title_terms = [terms(t) for t in titles]
        abstract_terms = [terms(a) for a in abstracts]
        self.vocabulary: dict[str, int] = {}
        title_counts = self._counts(title_terms)
        abstract_counts = self._counts(abstract_terms)
        n_terms = len(self.vocabulary)
        title_counts.resize((len(titles), n_terms))
        abstract_counts.resize((len(abstracts), n_terms))

        self._title_average = _average_length(title_counts)
        self._abstract_average = _average_length(abstract_counts)
        present = (title_counts + abstract_counts).tocsc()
        present.data[:] = 1
        df = np.asarray(present.sum(axis=0)).ravel()
        n = max(len(titles), 1)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self.weights = self._weigh(title_counts, abstract_counts)
        self._typical_idf = float(np.median(self.idf)) if len(self.idf) else 1.0
        self.presence = (title_counts + abstract_counts).tocsr()
        self.presence.data[:] = 1.0
        # Transposed once, as candidates.py does for similarity: a product with ``.T``
        # converts the whole matrix again at each call, which was most of what each
        # chunk of readers cost the ranking beyond its readers.
        self._weights_columns = self.weights.T.tocsr()
        self._presence_columns = self.presence.T.tocsr()

    def _weigh(self, title_counts: sp.csr_matrix, abstract_counts: sp.csr_matrix) -> sp.csr_matrix:
        config = self.config
        combined = (
            config.title_weight * _length_normalised(title_counts, config.b, self._title_average)
            + config.abstract_weight
            * _length_normalised(abstract_counts, config.b, self._abstract_average)
        ).tocsr()
        combined.data = combined.data / (config.k1 + combined.data)
        weights = (combined @ sp.diags(self.idf)).tocsr()
        weights.sort_indices()
        return weights

    def transform(self, titles: Sequence[str], abstracts: Sequence[str]) -> sp.csr_matrix:
        """BM25F rows for papers outside the index (their unknown words dropped)."""
        frozen = _Frozen(self.vocabulary)
        title_counts = frozen.counts([terms(t) for t in titles])
        abstract_counts = frozen.counts([terms(a) for a in abstracts])
        return self._weigh(title_counts, abstract_counts)

    def _counts(self, documents: list[list[str]]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        for document in documents:
            for term in document:
                indices.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
            indptr.append(len(indices))
        return _csr(indices, indptr, len(self.vocabulary))

    def query_matrix(self, phrases: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """One row per phrase, normalised so that a paper that has every word and
        pair of the phrase in its title scores close to 1; and each phrase's
        ideal weight (what a perfect match would sum to before normalising)."""
        rows, cols, values = [], [], []
        ideals = np.zeros(len(phrases), dtype=np.float64)
        for row, phrase in enumerate(phrases):
            weights: dict[int, float] = {}
            unknown = 0.0
            for term in set(terms(phrase)):
                weight = self.config.phrase_weight if is_pair(term) else 1.0
                column = self.vocabulary.get(term)
                if column is None:
                    unknown += weight
                else:
                    weights[column] = weight
            # Unknown words count in the norm: a phrase half made of words no paper
            # uses is at best half matched.
            ideal = sum(w * self.idf[c] for c, w in weights.items()) + unknown * self._typical_idf
            ideals[row] = ideal
            for column, weight in weights.items():
                rows.append(row)
                cols.append(column)
                values.append(weight / (ideal * self._saturated_title) if ideal else 0.0)
        matrix = sp.csr_matrix(
            (values, (rows, cols)), shape=(len(phrases), max(len(self.vocabulary), 1))
        )
        return matrix, ideals

    @property
    def _saturated_title(self) -> float:
        # What one occurrence in a short title and the abstract reach: the scale of "a good match".
        tf = self.config.title_weight + self.config.abstract_weight
        return tf / (self.config.k1 + tf)

    def scores(self, queries: sp.csr_matrix) -> np.ndarray:
        """Phrases x papers, each in 0..~1."""
        result: np.ndarray = np.asarray((queries @ self._weights_columns).toarray())
        np.clip(result, 0.0, 1.0, out=result)
        return result

    def contains(self, phrases: Sequence[str]) -> np.ndarray:
        """Phrases x papers: True where the paper has every word of the phrase."""
        rows, cols, needed = [], [], []
        for row, phrase in enumerate(phrases):
            words = set(stems(phrase))
            columns = [self.vocabulary.get(w) for w in words]
            # A word no paper has: no paper contains the phrase.
            needed.append(len(words) if words and None not in columns else -1)
            for column in columns:
                if column is not None:
                    rows.append(row)
                    cols.append(column)
        query = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)),
            shape=(len(phrases), max(len(self.vocabulary), 1)),
        )
        found: np.ndarray = np.asarray((query @ self._presence_columns).toarray())
        return np.asarray(found == np.asarray(needed, dtype=np.float64)[:, None])


def unit_rows(weights: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit length (all-zero rows kept), for cosine similarity by product."""
    norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sp.diags(1.0 / norms) @ weights).tocsr()


class _Frozen:
    """Counting against a vocabulary that does not grow."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary

    def counts(self, documents: list[list[str]]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        for document in documents:
            indices.extend(c for c in map(self.vocabulary.get, document) if c is not None)
            indptr.append(len(indices))
        return _csr(indices, indptr, len(self.vocabulary))


def _csr(indices: list[int], indptr: list[int], width: int) -> sp.csr_matrix:
    counts = sp.csr_matrix(
        (
            np.ones(len(indices), dtype=np.float64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(indptr) - 1, max(width, 1)),
    )
    counts.sum_duplicates()
    return counts


def _average_length(counts: sp.csr_matrix) -> float:
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    return float(lengths.mean()) if lengths.size and lengths.mean() > 0 else 1.0


def _length_normalised(counts: sp.csr_matrix, b: float, average: float) -> sp.csr_matrix:
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    return (sp.diags(1.0 / (1.0 - b + b * lengths / average)) @ counts).tocsr()
