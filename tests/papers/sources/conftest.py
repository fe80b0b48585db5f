"""The sources' tests fetch from recorded real responses (see ``recorded.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.papers.sources.recorded import Recorded, fetcher_answered_by


@pytest.fixture
def serve() -> Callable[..., Recorded]:
    """``serve(handler, **fetcher_options)``: a fetcher whose requests ``handler`` answers."""
    return fetcher_answered_by
