"""Per-reader cost of composing a digest (render + MIME build), premailer excluded.

    .venv/bin/python benchmarks/render.py [READERS]

Prints messages per second for composing READERS digests from the shipped sample
papers, and how many times premailer ran (it should be once per HTML template).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from itertools import islice

from config.settings import Settings
from digest.mail.rendering import premailer_runs
from digest.papers.models import Paper
from digest.papers.sources.sample import SampleSource
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from digest.subscriptions.models import Subscriber


def main(readers: int) -> None:
    settings = Settings.from_values(secret_key="benchmark")
    composer = Runtime(settings).composer
    papers = [
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
    now = datetime.now(UTC)
    start = time.perf_counter()
    size = 0
    for n in range(readers):
        subscriber = Subscriber(
            id=n + 1,
            email=f"reader{n}@example.org",
            interests="diffusion",
            token_version=1,
            frequency="daily",
        )
        picks = [
            Pick(paper=papers[(n + k) % len(papers)], reason="matches: diffusion", upvotes=3)
            for k in range(5)
        ]
        composed = composer.compose(subscriber, picks, edition="2026-11-21", now=now)
        size += len(composed.message.as_bytes())
    elapsed = time.perf_counter() - start
    runs = premailer_runs(composer.environment)
    print(
        f"composed {readers} digests in {elapsed:.2f}s: {readers / elapsed:,.0f} messages/s "
        f"(avg {size / readers / 1024:.1f} KiB), premailer runs: {runs}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
