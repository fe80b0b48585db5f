"""Real ``digest`` processes for the worker tests, stopped whole when a test ends.

Each test module gives the ``environment`` they run with (broker, database, SMTP).
Tests run on Redis; a test parametrized with
``pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)`` runs on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digest.processes import VENV_BIN, Process, start_process, stop_all


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """Which broker the test's ``environment`` uses: "redis" unless parametrized."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def start(environment: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def launch(name: str, *args: str) -> Process:
        process = start_process(
            name, [str(VENV_BIN / "digest"), *args], workdir=tmp_path, env=environment
        )
        started.append(process)
        return process

    yield launch
    stop_all(started)
