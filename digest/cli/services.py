"""The long-running processes: ``digest web``, ``digest worker``, ``digest beat``; and
``digest send-due``, which hands the due digests to them (or sends in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import fail, load_settings, open_celery


def send_due() -> None:
    """Send every digest that is due now (through the task queue, or in-process)."""
    app = open_celery()
    claimed = app.tasks["digest.dispatch_due"].delay()
    if app.in_process:
        typer.echo(f"{claimed.get()} digest(s) were due and have been processed")
    else:
        typer.echo("dispatch queued; a worker sends the due digests")


def web(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes; one per core for the spike after a send.")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the web app: subscribe, confirm, preferences and unsubscribe pages."""
    import uvicorn

    # Checked here for a one-line error; each worker process reads the same environment.
    load_settings()
    uvicorn.run(
        "digest.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        # Behind a proxy on this host, the client address (for rate limits) is the reader's.
        proxy_headers=True,
    )


def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (extra arguments go to celery)."""
    app = open_celery()
    if app.in_process:
        fail(
            "DIGEST_BROKER_URL is not set: a worker needs a broker (e.g. redis://127.0.0.1:6379/0)"
        )
    app.worker_main(["worker", "--loglevel=INFO", *ctx.args])


def beat(ctx: typer.Context) -> None:
    """Run Celery beat, the scheduler (extra arguments go to celery)."""
    app = open_celery()
    if app.in_process:
        fail("DIGEST_BROKER_URL is not set: beat needs a broker (e.g. redis://127.0.0.1:6379/0)")
    schedule = Path(app.settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}", *ctx.args])
