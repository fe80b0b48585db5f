"""``digest inbound``: the SMTP server for bounces, abuse reports and mailto unsubscribes."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from digest.cli.context import fail, load_settings

log = logging.getLogger("digest.inbound")


def inbound(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default DIGEST_INBOUND_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port (default DIGEST_INBOUND_PORT)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port (/metrics)."),
    ] = None,
) -> None:
    """Receive bounces (DSNs), abuse reports (ARF) and mailto unsubscribes over SMTP."""
    from config.settings import DEFAULT_SECRET_KEY
    from digest.inbound.handler import InboundHandler
    from digest.inbound.server import serve
    from digest.metrics.instruments import inbound_metrics
    from digest.network import is_loopback
    from digest.runtime import Runtime

    settings = load_settings()
    bind_host = host or settings.inbound_host
    bind_port = port or settings.inbound_port
    if settings.secret_key == DEFAULT_SECRET_KEY and not is_loopback(bind_host):
        # With the public key anyone could sign VERP addresses and unsubscribe tokens,
        # and so bounce or unsubscribe any reader by mailing this server.
        fail(
            f"refusing to receive mail on {bind_host} with the default DIGEST_SECRET_KEY: "
            "anyone could forge bounces and unsubscribes for any reader. Set "
            "DIGEST_SECRET_KEY to a private random value or listen on 127.0.0.1"
        )
    runtime = Runtime(settings)
    # Logged at INFO: what each message did is the operator's record of this process.
    logging.getLogger("digest").setLevel(logging.INFO)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port)
        except OSError as exc:
            fail(f"cannot serve metrics on port {metrics_port}: {exc.strerror}", 2)
    handler = InboundHandler(runtime.inbound_addresses, runtime.receive_mail, inbound_metrics())

    def ready() -> None:
        log.warning(
            "inbound mail on %s:%d for %s (at most %d bytes a message)",
            bind_host,
            bind_port,
            runtime.site.ascii_domain,
            settings.inbound_max_bytes,
        )

    try:
        serve(
            handler,
            host=bind_host,
            port=bind_port,
            max_bytes=settings.inbound_max_bytes,
            hostname=runtime.site.ascii_domain,
            on_ready=ready,
        )
    except OSError as exc:
        fail(f"cannot listen on {bind_host}:{bind_port}: {exc.strerror}", 2)
    finally:
        runtime.dispose()
