"""The worker's exporter: an HTTP server in the main worker process serving what every
pool process counted.

Prefork children send the mail, so each counts into files of its own under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode), and the
main process's server adds them up at each scrape; a child that exits or is
replaced keeps its counts. The directory must be set before prometheus_client is
first imported in the main process, and emptied at start: :func:`prepare` does both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# What prometheus_client writes there: one file per metric kind and process.
_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


@contextmanager
def prepare() -> Iterator[Path]:
    """The multiprocess directory for this worker: the operator's ``PROMETHEUS_MULTIPROC_DIR``,
    emptied of the last run's counts, or a new one removed when the worker ends."""
    given = os.environ.get(VARIABLE)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for pattern in _FILES:
            for stale in folder.glob(pattern):
                stale.unlink()
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="digest-metrics-"))
    os.environ[VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Start the exporter's HTTP server on a thread of this process (after :func:`prepare`).
    Raises OSError when the port is taken."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get(VARIABLE) is None:
        raise RuntimeError(f"{VARIABLE} must be set before the exporter starts (prepare())")
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)
