"""Beat's schedule run in a thread of this process, without a broker (``digest serve``).

The same entries as :func:`config.beat.beat_schedule`, at the same intervals:
every source's ingestion, then dispatch; each runs once at start, as beat runs an
interval schedule it has no record of, then every interval after its last run
ended. Tasks run in process (the embedded default), one at a time: SQLite has one
writer. The sweep is left out: in process, dispatch sweeps first (workers.tasks).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.exceptions import Retry

from config.beat import beat_schedule
from digest.papers.ingest import SourceSummary
from workers.app import DigestCelery

log = logging.getLogger("digest.serve")

LOCAL_TASKS = ("digest.ingest", "digest.dispatch_due")


@dataclass(frozen=True)
class Entry:
    name: str
    task: str
    every_seconds: float
    args: tuple[Any, ...]


def local_entries(app: DigestCelery) -> list[Entry]:
    """Beat's ingestion and dispatch entries, ingestion first."""
    entries = [
        Entry(name, spec["task"], spec["schedule"].total_seconds(), tuple(spec.get("args", ())))
        for name, spec in beat_schedule(app.settings).items()
        if spec["task"] in LOCAL_TASKS
    ]
    return sorted(entries, key=lambda entry: LOCAL_TASKS.index(entry.task))


class LocalBeat:
    """``start()`` runs the schedule in a thread until ``stop()``."""

    def __init__(self, app: DigestCelery) -> None:
        if not app.in_process:
            raise ValueError("the local schedule runs tasks in process: no broker")
        self.app = app
        self.entries = local_entries(app)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-schedule", daemon=True)

    def start(self) -> None:
        for entry in self.entries:
            log.info("schedule: %s every %s", entry.name, _duration(entry.every_seconds))
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the run in progress; False if it had not ended within ``timeout``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        next_run = {entry.name: time.monotonic() for entry in self.entries}
        failures = dict.fromkeys(next_run, 0)
        while not self._stopping.is_set():
            for entry in self.entries:
                if self._stopping.is_set():
                    return
                if next_run[entry.name] <= time.monotonic():
                    try:
                        retry_in = self.run_once(entry, failures[entry.name])
                    except Exception:  # reporting the run failed: the thread must go on
                        log.exception("%s: its result could not be reported", entry.name)
                        retry_in = None
                    failures[entry.name] = 0 if retry_in is None else failures[entry.name] + 1
                    wait = entry.every_seconds if retry_in is None else retry_in
                    next_run[entry.name] = time.monotonic() + wait
            if next_run:
                self._stopping.wait(max(min(next_run.values()) - time.monotonic(), 0))
            else:
                self._stopping.wait()

    def run_once(self, entry: Entry, failures: int = 0) -> float | None:
        """One run of ``entry``, logged. A failure is logged and the schedule goes on:
        None, or after a transient failure (the task's ``autoretry_for``: SQLite
        busy with the web's writes, a database hiccup) the seconds until it is tried
        again, on the task's own back-off, as a worker would retry it."""
        task = self.app.tasks[entry.task]
        started = time.perf_counter()
        try:
            # Celery's guard against waiting on a task from inside one is a flag of the
            # process, raised while any eager task runs: a notice the web thread is
            # sending would make this wait look like one. It is none: the result is here.
            result = task.delay(*entry.args).get(disable_sync_subtasks=False)
        except Exception as exc:
            retry_in = _retry_in(task, exc, failures)
            log.exception(
                "%s failed after %.1fs; %s",
                entry.name,
                time.perf_counter() - started,
                f"tried again in {_duration(retry_in)}"
                if retry_in is not None
                else f"next run in {_duration(entry.every_seconds)}",
            )
            return retry_in
        elapsed = time.perf_counter() - started
        if entry.task == "digest.ingest":
            for values in result:
                summary = SourceSummary(**values)
                # A source that failed is a failed run too; the others were stored.
                log.log(
                    logging.WARNING if summary.error else logging.INFO, "ingest %s", summary.line()
                )
            return None
        left = self.app.runtime.pending_deliveries()
        log.info(
            "dispatch: %d digest(s) due%s (%.1fs)",
            result,
            f"; {left} could not be sent yet (SMTP?), tried again next dispatch" if left else "",
            elapsed,
        )
        return None


def _retry_in(task: Task, exc: Exception, failures: int) -> float | None:
    """Seconds until a transient failure is tried again; None when it is not one,
    or has been tried as often as the task allows."""
    # In process, autoretry raises Retry with the failure in it.
    cause = exc.exc if isinstance(exc, Retry) and isinstance(exc.exc, Exception) else exc
    if not isinstance(cause, tuple(task.autoretry_for)) or failures >= (task.max_retries or 0):
        return None
    backoff = float(task.retry_backoff or 1)
    delay: float = min(backoff * 2**failures, float(task.retry_backoff_max or backoff))
    return delay


def _duration(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
