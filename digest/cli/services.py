"""The long-running processes: ``digest web``, ``digest serve``, ``digest worker``,
``digest beat``; and ``digest send-due``, which hands the due digests to them (or sends
in-process)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import fail, load_settings, open_celery

log = logging.getLogger("digest.web")

# EX_TEMPFAIL (sysexits.h): nothing is wrong with the command; try again later.
EXIT_TRY_AGAIN = 75


def send_due(
    processes: Annotated[
        int,
        typer.Option(
            min=1, help="Without a broker: rank and mail in this many processes (one per core)."
        ),
    ] = 1,
) -> None:
    """Send every digest that is due now (through the task queue, or in-process)."""
    app = open_celery()
    if not app.in_process:
        if processes > 1:
            fail(
                "--processes is for sending without a broker; with DIGEST_BROKER_URL set, "
                "workers send (digest worker --concurrency N)",
                2,
            )
        app.tasks["digest.dispatch_due"].delay()
        typer.echo("dispatch queued; a worker sends the due digests")
        return
    stages: AbstractContextManager[None] = nullcontext()
    where = ""
    if processes > 1:
        from workers.local_processes import stages_in_processes

        if app.settings.resolved_database_url.startswith("sqlite"):
            fail("--processes needs PostgreSQL (DIGEST_DATABASE_URL): SQLite has one writer", 2)
        stages, where = stages_in_processes(app, processes), f" in {processes} processes"
    with stages:
        claimed = app.tasks["digest.dispatch_due"].delay().get()
    typer.echo(f"{claimed} digest(s) were due and have been processed{where}")
    left = app.runtime.pending_deliveries()
    if left:
        fail(
            f"{left} digest(s) could not be sent now (SMTP unavailable): they stay queued; "
            "run send-due again",
            EXIT_TRY_AGAIN,
        )


def refuse_default_secret_off_loopback(secret_key: str, host: str) -> None:
    """The secret-key rules of ``digest web`` and ``digest serve``."""
    from config.settings import DEFAULT_SECRET_KEY
    from digest.network import is_loopback

    if secret_key == DEFAULT_SECRET_KEY:
        # The default key is public: whoever can reach the site could sign links
        # to anyone's preferences. Production settings refuse it outright.
        if not is_loopback(host):
            fail(
                f"refusing to serve on {host} with the default DIGEST_SECRET_KEY: anyone "
                "could forge links to any subscription. Set DIGEST_SECRET_KEY to a private "
                "random value (python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
                "or serve on 127.0.0.1"
            )
        log.warning(
            "DIGEST_SECRET_KEY is the public development default: links are forgeable; "
            "serving on %s only",
            host,
        )


def warn_when_no_smtp_server(smtp_url: str) -> None:
    """Without a broker a notice is sent while the request waits, once: with no SMTP
    server there, every confirmation email would be lost without a word."""
    import socket

    from digest.mail.smtp import SmtpConfig

    try:
        config = SmtpConfig.from_url(smtp_url)
        with socket.create_connection((config.hostname, config.port), timeout=2):
            return
    except ValueError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"nothing answers at {config.hostname}:{config.port} ({exc.strerror or exc})"
    log.warning(
        "DIGEST_SMTP_URL: %s: confirmation emails will be lost (without DIGEST_BROKER_URL "
        "nothing queues them). `digest serve` runs the site with a local SMTP server and "
        "shows what it receives at /mailbox",
        problem,
    )


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
    settings = load_settings()
    refuse_default_secret_off_loopback(settings.secret_key, host)
    if not settings.broker_url:
        warn_when_no_smtp_server(settings.smtp_url)
    uvicorn.run(
        "digest.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        # Forwarded headers are believed only from DIGEST_TRUSTED_PROXIES, by the app
        # itself; uvicorn's own would trust any client on 127.0.0.1.
        proxy_headers=False,
    )


def serve(
    host: Annotated[
        str, typer.Option(help="Address to serve on; only this machine's unless you say.")
    ] = "127.0.0.1",
    port: int = 8000,
    smtp_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Receive mail on this port of 127.0.0.1 [default: DIGEST_SMTP_URL's, 1025].",
        ),
    ] = None,
    schedule: Annotated[
        bool, typer.Option(help="Ingest and dispatch on beat's schedule, in this process.")
    ] = True,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Everything in one process, on SQLite, no broker: the web pages, ingestion and
    dispatch on their schedule, and a local SMTP sink whose mail is shown at /mailbox."""
    from digest.serve import ServeRefused, run_local_service, serve_settings

    try:
        settings = serve_settings(load_settings(), host=host, port=port, smtp_port=smtp_port)
    except ServeRefused as exc:
        fail(str(exc), 2)
    refuse_default_secret_off_loopback(settings.secret_key, host)
    try:
        # The schedule's lines are what a person watches; the root logger says warnings only.
        logging.getLogger("digest.serve").setLevel(logging.INFO)
        run_local_service(settings, host=host, port=port, schedule=schedule, access_log=access_log)
    except ServeRefused as exc:
        fail(str(exc), 2)


def worker(
    ctx: typer.Context,
    queues: Annotated[
        str,
        typer.Option(
            "--queues",
            "-Q",
            help="Comma-separated stages to serve (ingest, rank, mail); default: all.",
        ),
    ] = "",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus metrics of every pool process on this port (/metrics).",
        ),
    ] = None,
) -> None:
    """Run a Celery worker (extra arguments go to celery)."""
    if metrics_port is None:
        _run_worker(ctx, queues, metrics_port)
        return
    from digest.metrics.exporter import prepare

    # Before anything imports prometheus_client: the pool processes count into files.
    with prepare():
        _run_worker(ctx, queues, metrics_port)


def _run_worker(ctx: typer.Context, queues: str, metrics_port: int | None) -> None:
    from workers.app import QUEUES

    app = open_celery()
    if app.in_process:
        fail(
            "DIGEST_BROKER_URL is not set: a worker needs a broker (e.g. redis://127.0.0.1:6379/0)"
        )
    chosen = [name.strip() for name in queues.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown:
        fail(f"unknown queue(s) {', '.join(unknown)}: choose among {', '.join(QUEUES)}", 2)
    if metrics_port is not None:
        from digest.metrics.exporter import serve

        try:
            serve(metrics_port)
        except OSError as exc:
            fail(f"cannot serve metrics on port {metrics_port}: {exc.strerror}", 2)
    # Without --queues Celery consumes every queue of task_queues: all the stages.
    selection = [f"--queues={','.join(chosen)}"] if chosen else []
    app.worker_main(["worker", "--loglevel=INFO", *selection, *ctx.args])


def beat(ctx: typer.Context) -> None:
    """Run Celery beat, the scheduler (extra arguments go to celery)."""
    app = open_celery()
    if app.in_process:
        fail("DIGEST_BROKER_URL is not set: beat needs a broker (e.g. redis://127.0.0.1:6379/0)")
    schedule = Path(app.settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}", *ctx.args])
