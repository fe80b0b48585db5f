"""Ranking at scale: 100,000 readers x 2,000 candidate papers, ranked and selected.

    .venv/bin/python benchmarks/ranking_scale.py [--readers 100000] [--chunk 2000]
        [--semantic | --lexical] [--seed 7]

Papers (2,000): the real 1,504-item arXiv RSS capture, the 188 shipped Daily
Papers, the 125 entries of the two arXiv API captures, and 183 re-posts of
some of those (same title and abstract under another id, as a paper listed
twice), which the near-duplicate rule must keep out of the same digest. Their
popularity is drawn from a heavy-tailed distribution (most papers unvoted).

Readers (synthetic, seeded): 1-4 interest phrases drawn from 5,000 distinct
phrases (title fragments of the papers and free-text paraphrases), 20% with no
interests (the overall trending list), 10% following an author, 10% arXiv
categories, 5% an excluded keyword, 5% "more/fewer like this" feedback, each
already sent 0-30 of today's candidates, papers per digest 3-20.

What is timed: building the candidates (lexical index, trending scores,
near-duplicate groups; the paper embeddings are computed before, as they are
stored in the database once per paper), the distinct phrases' embeddings
(once per phrase and process, like the ranker's cache), then scoring and
selecting every reader in chunks of ``--chunk``, which bounds memory: a chunk's
matrices are chunk x 2,000 float32. Peak RSS is reported.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from config.ranking import load_ranking_config
from digest.papers.models import Paper
from digest.papers.sources import PaperRecord
from digest.papers.sources.arxiv_api import parse_arxiv_api_page
from digest.papers.sources.arxiv_rss import parse_arxiv_rss
from digest.ranking.candidates import Candidates
from digest.ranking.phrases import PhraseTable
from digest.ranking.profiles import Profile
from digest.ranking.selection import select_in_chunks
from digest.ranking.semantic import load_embedder, paper_text
from digest.ranking.trending import Trend

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures"
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
PARAPHRASES = [
    "making networks run on phones",
    "computers that draw pictures from a sentence",
    "robots that learn by watching people",
    "finding bugs in programs automatically",
    "reading medical scans",
    "cheaper training of huge language models",
    "keeping chatbots honest",
    "understanding how neural networks make decisions",
    "predicting the weather with machine learning",
    "self-driving cars seeing in the dark",
]


def real_records() -> list[PaperRecord]:
    records: list[PaperRecord] = []
    rss = gzip.decompress(
        (
            FIXTURES / "arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"
        ).read_bytes()
    )
    records += [r for r in parse_arxiv_rss(rss, what="rss") if isinstance(r, PaperRecord)]
    for name in (
        "arxiv_api_query_all-testing_100entries_2026-04-12.xml",
        "arxiv_api_query_cat-cs.AI-OR-cs.LG-OR-cs.CL_25entries_2026-08-02.xml",
    ):
        page = parse_arxiv_api_page((FIXTURES / "arxiv_api" / name).read_bytes(), what=name)
        records += [r for r in page.items if isinstance(r, PaperRecord)]
    sample = json.loads((ROOT / "digest/papers/data/sample_papers.json").read_text())["papers"]
    records += [
        PaperRecord(canonical_id=p["canonical_id"], title=p["title"], abstract=p["abstract"])
        for p in sample
    ]
    return records


def build_papers(count: int, rng: random.Random) -> tuple[list[Paper], list[Trend]]:
    records = real_records()
    papers = []
    for i, record in enumerate(records[:count]):
        papers.append(_paper(i, record.canonical_id, record))
    while len(papers) < count:
        original = rng.choice(records)
        papers.append(_paper(len(papers), f"repost:{len(papers)}", original))
    trends = []
    for _ in papers:
        if rng.random() < 0.7:
            trends.append(Trend())
        else:
            upvotes = int(rng.paretovariate(1.2))
            trends.append(Trend(upvotes=upvotes, gained=int(upvotes * rng.random())))
    return papers, trends


def _paper(i: int, canonical_id: str, record: PaperRecord) -> Paper:
    return Paper(
        id=i + 1,
        canonical_id=canonical_id,
        title=record.title,
        abstract=record.abstract or "",
        authors=list(record.authors),
        categories=list(record.categories),
        first_seen_at=NOW - timedelta(hours=(i * 7) % 160),
        links={},
    )


def phrase_vocabulary(papers: list[Paper], size: int, rng: random.Random) -> list[str]:
    phrases = set(PARAPHRASES)
    while len(phrases) < size:
        words = [w.strip(":,.()").lower() for w in rng.choice(papers).title.split()]
        words = [w for w in words if w.isalpha() and len(w) > 2]
        if len(words) >= 2:
            start = rng.randrange(len(words) - 1)
            phrases.add(" ".join(words[start : start + rng.choice((1, 2, 2, 3))]))
    return sorted(phrases)


def build_readers(
    n: int, papers: list[Paper], vocabulary: list[str], rng: random.Random
) -> tuple[list[Profile], list[set[int]]]:
    authors = [a for p in papers for a in p.authors] or ["nobody"]
    categories = sorted({c for p in papers for c in p.categories}) or ["cs.LG"]
    ids = [p.id for p in papers]
    profiles, sent = [], []
    for _ in range(n):
        interests = (
            ""
            if rng.random() < 0.2
            else ", ".join(rng.sample(vocabulary, rng.choice((1, 2, 2, 3, 4))))
        )
        profiles.append(
            Profile(
                interests=interests,
                authors=tuple(rng.sample(authors, 1)) if rng.random() < 0.1 else (),
                categories=tuple(rng.sample(categories, 2)) if rng.random() < 0.1 else (),
                excluded=(rng.choice(vocabulary),) if rng.random() < 0.05 else (),
                more_like=tuple(rng.sample(ids, 2)) if rng.random() < 0.05 else (),
                fewer_like=(rng.choice(ids),) if rng.random() < 0.05 else (),
                limit=rng.choice((3, 5, 5, 10, 20)),
            )
        )
        sent.append(set(rng.sample(ids, rng.randrange(31))))
    return profiles, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--phrases", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="threads ranking chunks")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the papers' embeddings are kept between runs (as the database keeps them)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--semantic", action="store_true", help="require the semantic extra")
    mode.add_argument("--lexical", action="store_true", help="lexical relevance only")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    config = load_ranking_config()

    papers, trends = build_papers(args.papers, rng)
    vocabulary = phrase_vocabulary(papers, args.phrases, rng)
    profiles, sent = build_readers(args.readers, papers, vocabulary, rng)
    embedder = None if args.lexical else load_embedder("on" if args.semantic else "auto")
    print(
        f"{len(papers)} papers, {len(profiles)} readers, {len(vocabulary)} distinct phrases, "
        f"{'semantic + lexical' if embedder else 'lexical only'}"
    )

    vectors = None
    if embedder is not None:
        texts = [paper_text(p.title, p.abstract) for p in papers]
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        cached = args.cache / f"ranking_scale_{embedder.name}_{digest}.npy"
        if cached.exists():
            vectors = np.load(cached)
            print(f"paper embeddings: read from {cached} (computed once per paper)")
        else:
            started = time.perf_counter()
            vectors = embedder.embed(texts)
            print(
                f"paper embeddings (once per paper, stored):  "
                f"{time.perf_counter() - started:7.2f} s"
            )
            args.cache.mkdir(parents=True, exist_ok=True)
            np.save(cached, vectors)

    started = time.perf_counter()
    candidates = Candidates.build(papers, trends, now=NOW, config=config, vectors=vectors)
    built = time.perf_counter() - started
    print(
        f"candidates (index, trending, duplicates):   {built:7.2f} s "
        f"({len(candidates.duplicate_groups)} near-duplicate groups)"
    )

    table = PhraseTable(candidates, embedder)
    started = time.perf_counter()
    table.ensure(vocabulary)
    print(f"distinct phrases scored (once per process): {time.perf_counter() - started:7.2f} s")

    started = time.perf_counter()
    picked = 0
    empty = 0
    for offset, selected in select_in_chunks(
        candidates, profiles, sent=sent, phrases=table, chunk=args.chunk, workers=args.workers
    ):
        picked += len(selected)
        empty += min(args.chunk, len(profiles) - offset) - len(np.unique(selected.readers))
    ranked = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rank + select {len(profiles):,} readers:        {ranked:7.2f} s "
        f"({len(profiles) / ranked:,.0f} readers/s; {picked:,} picks, "
        f"{empty:,} readers with nothing relevant enough)"
    )
    print(f"total without the one-off embeddings:       {built + ranked:7.2f} s")
    print(f"peak RSS: {peak:,.0f} MiB (chunks of {args.chunk:,} readers, {args.workers} threads)")
    feedback = [i for p in profiles for i in (*p.more_like, *p.fewer_like)]
    assert all(i in candidates.position for i in feedback)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
