"""Real ``digest`` processes for the worker tests, stopped whole when a test ends.

Each test module gives the ``environment`` they run with (broker, database, SMTP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digest.processes import VENV_BIN, Process, start_process, stop_all


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
