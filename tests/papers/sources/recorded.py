"""Recorded real responses served through httpx's transport layer.

Remote feeds are the one thing outside this machine, so they are the one thing
replaced: by byte copies of real responses (see ``tests/fixtures/*/SOURCES.md``),
answered by an ``httpx.MockTransport`` that also records every request made.
The ``serve`` fixture (this folder's conftest) builds a ``Recorded`` fetcher.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from digest.papers.sources.http import Fetcher

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture_bytes(relative: str) -> bytes:
    """A recorded payload, e.g. ``fixture_bytes("arxiv_api/…xml")``; ``.gz`` is unpacked."""
    path = FIXTURES / relative
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeClock:
    """Time that only moves when the code under test sleeps: politeness without waiting."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@dataclass
class Recorded:
    """A fetcher whose requests go to ``handler``; ``requests`` lists what was asked."""

    fetcher: Fetcher
    clock: FakeClock
    requests: list[httpx.Request]


def fetcher_answered_by(handler: Handler, **fetcher_options: object) -> Recorded:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    clock = FakeClock()
    client = httpx.Client(transport=httpx.MockTransport(record))
    fetcher = Fetcher(
        client=client,
        sleep=clock.sleep,
        clock=clock.monotonic,
        **fetcher_options,  # type: ignore[arg-type]
    )
    return Recorded(fetcher, clock, requests)
