"""Messages waiting in each stage's broker queue, as Celery's monitoring guide reads them:
``LLEN`` of the queue's list on Redis, a passive ``queue_declare`` on RabbitMQ.

A scrape or ``digest status`` must answer even when the broker does not: every
connection has a short timeout, and an unreachable broker is ``None``, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2.0


def queue_depths(broker_url: str, queues: Sequence[str]) -> dict[str, int] | None:
    """Messages ready in each queue (not those a worker holds); None when the broker
    cannot be reached or is of a kind not read here. A queue never declared is empty."""
    scheme = urlsplit(broker_url).scheme
    try:
        if scheme in ("redis", "rediss", "unix"):
            return _redis_depths(broker_url, queues)
        if scheme in ("amqp", "amqps", "pyamqp"):
            return _amqp_depths(broker_url, queues)
    except Exception as exc:
        log.warning("queue depths unavailable: %s", exc)
        return None
    log.info("queue depths are not read from %s brokers", scheme)
    return None


def _redis_depths(url: str, queues: Sequence[str]) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in queues:
                pipe.llen(name)
            lengths = pipe.execute()
    finally:
        client.close()
    return {name: int(length) for name, length in zip(queues, lengths, strict=True)}


def _amqp_depths(url: str, queues: Sequence[str]) -> dict[str, int]:
    from kombu.connection import Connection

    depths: dict[str, int] = {}
    with Connection(url, connect_timeout=TIMEOUT_SECONDS) as connection:  # type: ignore[no-untyped-call]
        connection.ensure_connection(max_retries=1)
        for name in queues:
            # A channel each: RabbitMQ closes the channel of a passive declare that
            # names a queue it does not have.
            channel = connection.channel()
            try:
                _, count, _ = channel.queue_declare(queue=name, passive=True)
            except connection.channel_errors:
                count = 0
            finally:
                # Already closed by the server after a 404: nothing to close.
                with suppress(*connection.channel_errors, *connection.connection_errors):
                    channel.close()
            depths[name] = int(count)
    return depths
