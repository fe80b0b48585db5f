"""``digest send-due --processes N``: an in-process send spread over N processes.

Without a broker every stage runs inline, one chunk after another, on one core.
Here the chunks that dispatch publishes go to a pool of processes instead; each
process ranks its chunk and mails it (the mail stage it publishes runs inline in
that process), so the stages of different chunks run side by side. The ledger
makes this safe as it makes workers safe: every claim names the state it
leaves, so no delivery is taken by two processes. It needs PostgreSQL: SQLite
takes one writer at a time, and a second process's write fails as "locked".
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from workers.app import DigestCelery, create_celery

_app: DigestCelery | None = None


def _start_process() -> None:
    global _app
    from config.settings import get_settings

    _app = create_celery(get_settings())


def _run_stage(name: str, delivery_ids: list[int]) -> None:
    assert _app is not None, "the pool's initializer builds the app"
    # Not thrown: a retry (a database hiccup) is then run again here, as inline.
    result = _app.tasks[name].apply((delivery_ids,), throw=False)
    if result.failed():
        raise result.result


@contextmanager
def stages_in_processes(app: DigestCelery, processes: int) -> Iterator[None]:
    """While open, the stages ``app`` publishes run in ``processes`` processes; on
    leaving, every one has finished (the first error is raised here)."""
    # Fresh interpreters, not forks: a child inherits no database connection, event
    # loop or loaded model of this process. They read the same environment.
    context = multiprocessing.get_context("spawn")
    futures: list[Future[None]] = []
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_start_process) as pool:

        def submit(name: str, delivery_ids: list[int]) -> None:
            futures.append(pool.submit(_run_stage, name, delivery_ids))

        app.submit_stage = submit
        try:
            yield
            for future in futures:
                future.result()
        finally:
            app.submit_stage = None
