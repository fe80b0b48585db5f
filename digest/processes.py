"""Real processes, as the service tests and the benchmarks run ``digest``: start, watch, stop.

Each process runs in its own process group with its output in a log file, so that
it can be reported when a check fails and stopped whole (children included).

It lives in the package, not in ``tests/`` or ``benchmarks/``, because it is the
one place both can import as they are run: pytest puts the checkout on
``sys.path``, while ``python benchmarks/web.py`` puts only ``benchmarks/`` there,
so a benchmark finds the installed ``digest`` and nothing else of the checkout.
It uses only the standard library and builds nothing at import.
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

# The virtual environment running this interpreter holds the `digest` and `celery` scripts.
VENV_BIN = Path(sys.executable).parent


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


class CommandFailed(AssertionError):
    """A command that had to succeed exited non-zero; the message holds its output.

    An ``AssertionError`` so that pytest reports it as a failed check, with the output.
    """


def run_to_end(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs a command to its end; fails with its output unless it exits 0."""
    result = subprocess.run(
        list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result
