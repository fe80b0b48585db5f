"""Per-reader cost of composing a digest into wire bytes, the fast path against the reference.

    .venv/bin/python benchmarks/render.py [READERS]

Composes READERS digests of 5 papers (from the shipped sample papers) with
``DigestComposer.compose`` (prepared skeletons, MIME written as bytes), and a tenth as
many with ``DigestComposer.reference`` (Jinja per reader, an ``EmailMessage``, flattened
with ``as_bytes``), in the same run, and prints each one's cost per reader, their ratio
and how many times premailer ran (once per HTML template).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice

from config.settings import Settings
from digest.delivery.compose import DigestComposer
from digest.mail.message import WIRE_POLICY
from digest.mail.rendering import premailer_runs
from digest.papers.models import Paper
from digest.papers.sources.sample import SampleSource
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from digest.subscriptions.models import Subscriber

PAPERS_PER_DIGEST = 5


def sample_papers() -> list[Paper]:
    return [
        Paper(
            id=n,
            canonical_id=r.canonical_id,
            title=r.title,
            abstract=r.abstract,
            links=r.links,
            authors=[],
            author_count=r.author_count,
            published_on=r.published_on,
        )
        for n, r in enumerate(islice(SampleSource().fetch(), 50), start=1)
    ]


def reader(n: int, papers: list[Paper]) -> tuple[Subscriber, list[Pick]]:
    subscriber = Subscriber(
        id=n + 1,
        email=f"reader{n}@example.org",
        interests="diffusion",
        token_version=1,
        frequency="daily",
    )
    picks = [
        Pick(paper=papers[(n + k) % len(papers)], reason="matches: diffusion", upvotes=3)
        for k in range(PAPERS_PER_DIGEST)
    ]
    return subscriber, picks


def measure(
    readers: int, papers: list[Paper], wire_bytes: Callable[[Subscriber, list[Pick]], bytes]
) -> tuple[float, float]:
    """Seconds per reader and average message size in bytes."""
    inputs = [reader(n, papers) for n in range(readers)]
    size = 0
    start = time.perf_counter()
    for subscriber, picks in inputs:
        size += len(wire_bytes(subscriber, picks))
    return (time.perf_counter() - start) / readers, size / readers


def main(readers: int) -> None:
    settings = Settings.from_values(secret_key="benchmark")
    composer: DigestComposer = Runtime(settings).composer
    papers = sample_papers()
    now = datetime.now(UTC)

    def fast(subscriber: Subscriber, picks: list[Pick]) -> bytes:
        return composer.compose(
            subscriber, picks, delivery_id=subscriber.id, edition="2026-11-21", now=now
        ).outgoing.data

    def reference(subscriber: Subscriber, picks: list[Pick]) -> bytes:
        message = composer.reference(
            subscriber, picks, delivery_id=1, edition="2026-11-21", now=now
        )
        return message.as_bytes(policy=WIRE_POLICY)

    # Templates loaded and CSS inlined before timing, as in a running worker.
    fast(*reader(0, papers))
    reference(*reader(0, papers))
    fast_cost, fast_size = measure(readers, papers, fast)
    reference_readers = max(readers // 10, 20)
    reference_cost, reference_size = measure(reference_readers, papers, reference)
    print(
        f"fast path:      {readers} digests, {fast_cost * 1e6:,.0f} µs per reader "
        f"({1 / fast_cost:,.0f} messages/s, avg {fast_size / 1024:.1f} KiB)"
    )
    print(
        f"reference path: {reference_readers} digests, {reference_cost * 1e6:,.0f} µs per reader "
        f"({1 / reference_cost:,.0f} messages/s, avg {reference_size / 1024:.1f} KiB)"
    )
    print(
        f"fast path is {reference_cost / fast_cost:,.0f}x the reference; "
        f"premailer runs: {premailer_runs(composer.environment)}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
