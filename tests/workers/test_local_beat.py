"""Beat's schedule in a thread (``digest serve``): beat's own entries and intervals,
every run logged, a failed run logged and the schedule going on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import Settings
from digest.db.engine import make_engine
from digest.db.migrate import upgrade
from digest.processes import wait_for
from tests.cli.commands import lexical_ranking_file
from workers.app import create_celery
from workers.local_beat import LocalBeat, local_entries


def test_the_entries_are_beats_ingestion_and_dispatch_at_its_intervals(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_celery(make_settings(sources="sample,huggingface", dispatch_interval_minutes=3))
    entries = {entry.name: entry for entry in local_entries(app)}
    beat = app.conf.beat_schedule
    assert set(entries) == {name for name in beat if name != "recover-lost-digests"}
    for name, entry in entries.items():
        assert entry.task == beat[name]["task"]
        assert entry.every_seconds == beat[name]["schedule"].total_seconds()
    assert entries["dispatch-due-digests"].every_seconds == 180
    # Ingestion first: a digest at start is ranked on what was just fetched.
    assert [e.task for e in local_entries(app)][-1] == "digest.dispatch_due"


def test_a_failed_run_is_logged_and_the_schedule_goes_on(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without its tables yet: every run fails until it is upgraded.
    url = f"sqlite:///{tmp_path / 'late.db'}"
    app = create_celery(
        make_settings(
            database_url=url,
            sources="sample",
            dispatch_interval_minutes=0.01,
            # No embedding model to load at ingest: the schedule is the point.
            ranking_file=lexical_ranking_file(tmp_path),
        )
    )
    beat = LocalBeat(app)
    with caplog.at_level(logging.INFO, logger="digest.serve"):
        beat.start()
        try:

            def logged(text: str, level: int = logging.INFO) -> bool:
                return any(
                    r.name == "digest.serve" and text in r.getMessage() and r.levelno == level
                    for r in list(caplog.records)
                )

            assert wait_for(
                lambda: logged("dispatch-due-digests failed", logging.ERROR), timeout=30
            )
            assert logged("ingest-sample failed", logging.ERROR)
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            assert wait_for(lambda: logged("dispatch: 0 digest(s) due"), timeout=60, interval=0.1)
            assert wait_for(lambda: logged("ingest sample: 188 new"), timeout=60, interval=0.1)
        finally:
            assert beat.stop(timeout=30)
            app.dispose()
    failures = [
        r for r in caplog.records if r.name == "digest.serve" and r.levelno >= logging.ERROR
    ]
    assert all("tried again in" in r.getMessage() and r.exc_info for r in failures)
