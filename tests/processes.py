"""Real processes for the service tests: start, watch, stop.

Each process runs in its own process group with its output in a log file, so that
it can be reported when a check fails and stopped whole (children included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

# The virtual environment running the tests holds the `digest` and `celery` scripts.
VENV_BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Process:
    """A started process, its log file and the environment it was given."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def report(self) -> str:
        return f"--- {self.name} (exit {self.process.poll()}) output ---\n{self.output()}"


def start_process(
    name: str, argv: Sequence[str], *, workdir: Path, env: Mapping[str, str]
) -> Process:
    """Start ``argv`` in ``workdir`` (no developer .env is read), logging to ``<name>.log``."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole
        )
    return Process(name, process, log, dict(env))


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process group; SIGKILL if it has not exited after ``grace`` s."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def stop_all(processes: Iterable[Process]) -> None:
    """Stop every process, the last started first."""
    for item in reversed(list(processes)):
        stop(item.process)


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``check`` until it is true or ``timeout`` s have passed; a last try at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
