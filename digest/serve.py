"""``digest serve``: the embedded default as a whole local service, in one process.

A local SMTP sink (the mail goes nowhere else), the web app with its mail viewer
at ``/mailbox``, and beat's schedule of ingestion and dispatch in a thread
(:mod:`workers.local_beat`), tasks in process on SQLite. A person subscribes,
reads the confirmation at ``/mailbox``, confirms there and receives digests, with
nothing else running. SIGINT or SIGTERM stops all three and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn

from config.settings import Settings
from digest.mail.sink import SmtpSink
from digest.mail.smtp import SmtpConfig
from digest.network import is_loopback

log = logging.getLogger("digest.serve")

LOCAL_SMTP = "smtp://127.0.0.1:{port}"


class ServeRefused(Exception):
    """The configuration asks for something ``digest serve`` does not do."""


def mail_folder(settings: Settings) -> Path:
    """Where the sink writes, as ``digest demo`` does: the demo's digest is in the mailbox."""
    return (settings.data_dir / "mail").resolve()


def serve_settings(settings: Settings, *, host: str, port: int, smtp_port: int | None) -> Settings:
    """``settings`` as the local service runs them: mail to its own sink (on
    ``smtp_port``, else on DIGEST_SMTP_URL's port, which must be this machine's),
    links to the address served unless DIGEST_BASE_URL says otherwise."""
    if settings.broker_url:
        raise ServeRefused(
            "DIGEST_BROKER_URL is set: with a broker, workers and beat run the schedule "
            "(digest worker, digest beat, digest web); digest serve is the embedded "
            "default without one. Unset DIGEST_BROKER_URL to use it"
        )
    if smtp_port is None:
        try:
            config = SmtpConfig.from_url(settings.smtp_url)
        except ValueError as exc:
            raise ServeRefused(f"DIGEST_SMTP_URL: {exc}") from None
        if not is_loopback(config.hostname) or config.use_tls or config.username:
            raise ServeRefused(
                f"DIGEST_SMTP_URL is {settings.smtp_url}: digest serve receives every email "
                "itself, on a local SMTP sink, and sends nothing to a real mail server. "
                "Unset DIGEST_SMTP_URL (the sink listens on 127.0.0.1:1025) or give "
                "--smtp-port"
            )
        smtp_port = config.port
    update: dict[str, object] = {"smtp_url": LOCAL_SMTP.format(port=smtp_port)}
    if "base_url" not in settings.model_fields_set:
        if is_loopback(host):
            shown = f"[{host.strip('[]')}]" if ":" in host else host
            update["base_url"] = f"http://{shown}:{port}"
        else:
            # Links and the forms' origin check name DIGEST_BASE_URL: a reader reaching
            # this machine by another name would meet links to 127.0.0.1 and refused forms.
            log.warning(
                "serving on %s without DIGEST_BASE_URL: links name %s; set DIGEST_BASE_URL "
                "to the address readers use",
                host,
                settings.base_url,
            )
    return settings.model_copy(update=update)


@contextlib.contextmanager
def smtp_sink(settings: Settings) -> Iterator[SmtpSink]:
    config = SmtpConfig.from_url(settings.smtp_url)
    sink = SmtpSink(mail_folder(settings), hostname=config.hostname, port=config.port)
    try:
        sink.controller.start()
    except (OSError, RuntimeError) as exc:
        raise ServeRefused(
            f"cannot receive mail on {config.hostname}:{config.port} ({exc}): is another "
            "SMTP server or digest serve running? Give --smtp-port"
        ) from None
    try:
        yield sink
    finally:
        sink.controller.stop()


def run_local_service(
    settings: Settings,
    *,
    host: str,
    port: int,
    schedule: bool = True,
    access_log: bool = True,
) -> None:
    """Serve until SIGINT or SIGTERM. ``settings`` come from :func:`serve_settings`."""
    from digest.db.engine import make_engine
    from digest.db.migrate import upgrade
    from digest.mail.mailbox import Mailbox
    from digest.web.access_log import redact_access_log
    from digest.web.app import create_app
    from workers.app import create_celery
    from workers.local_beat import LocalBeat

    server: _Server | None = None
    signalled = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # From the start: a signal while the service starts stops it as cleanly.
        signalled.set()
        if server is not None:
            server.handle_exit(signum, frame)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The sink first: a port already taken is said at once, before anything is built.
        with smtp_sink(settings) as sink:
            log.info("mail: an SMTP sink on %s keeps every email in %s", sink.url, sink.directory)
            # As `digest demo` does: a first `digest serve` needs no `digest db upgrade`.
            engine = make_engine(settings.resolved_database_url)
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            server = _Server(
                uvicorn.Config(
                    create_app(settings, mailbox=Mailbox(mail_folder(settings))),
                    host=host,
                    port=port,
                    access_log=access_log,
                    log_level="info",
                    # As `digest web`: forwarded headers only from DIGEST_TRUSTED_PROXIES.
                    proxy_headers=False,
                )
            )
            redact_access_log()
            celery = create_celery(settings)
            beat = LocalBeat(celery) if schedule else None
            try:
                if beat is not None:
                    beat.start()
                else:
                    log.info("schedule: off (--no-schedule); `digest ingest`, `digest send-due`")
                log.info(
                    "open %s (subscribe) and %s/mailbox (what was sent)",
                    settings.base_url,
                    settings.base_url,
                )
                if not signalled.is_set():
                    asyncio.run(server.serve())
            finally:
                if beat is not None and not beat.stop():
                    log.warning("schedule: a run was still going at exit; its transaction is lost")
                celery.dispose()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


class _Server(uvicorn.Server):
    """uvicorn's server, with the signals handled by the caller: uvicorn's own
    handling raises the signal again once it has shut down, so a SIGTERM would end
    the process by that signal, not with exit 0 once everything has stopped."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
