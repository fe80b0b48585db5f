"""What the inbound tests share besides fixtures: the server and a reader with a digest."""

from __future__ import annotations

from dataclasses import dataclass

from digest.inbound.handler import InboundHandler
from digest.mail.sink import ClosingController, free_port
from digest.metrics.instruments import inbound_metrics
from digest.runtime import Runtime


@dataclass
class Inbound:
    runtime: Runtime
    host: str
    port: int


@dataclass
class Reader:
    subscriber_id: int
    email: str
    delivery_id: int
    # The digest as we sent it (bytes, no Return-Path) and its envelope sender.
    digest: bytes
    verp: str
    message_id: str


def serve_inbound(runtime: Runtime, *, max_bytes: int = 2 * 1024 * 1024) -> ClosingController:
    handler = InboundHandler(runtime.inbound_addresses, runtime.receive_mail, inbound_metrics())
    controller = ClosingController(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="example.org",
        data_size_limit=max_bytes,
    )
    controller.start()
    return controller
