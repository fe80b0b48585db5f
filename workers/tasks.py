"""Thin task wrappers: open a unit of work, call the domain, decide about retries.

Arguments are ids and JSON, never ORM objects. Follow-up tasks are published only
after the transaction that created their rows has committed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, cast

from celery import Task, shared_task
from sqlalchemy.exc import OperationalError

from digest.clock import utcnow
from digest.db.unit_of_work import after_commit, unit_of_work
from digest.delivery.ledger import claim_due_deliveries, retry_delay, stale_deliveries
from digest.mail.sender import SendError
from digest.runtime import Runtime, chunks
from digest.subscriptions.subscribers import Notice

log = logging.getLogger(__name__)

# A database or broker hiccup is worth a few retries with growing delays.
_TRANSIENT = {
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


def _runtime(task: Task) -> Runtime:
    return cast(Runtime, task.app.runtime)


@shared_task(bind=True, name="digest.ingest", acks_late=True, **_TRANSIENT)
def ingest_task(self: Task, source: str | None = None) -> list[dict[str, Any]]:
    summaries = _runtime(self).run_ingest(source)
    return [vars(s) for s in summaries]


@shared_task(bind=True, name="digest.dispatch_due", acks_late=True, **_TRANSIENT)
def dispatch_due_task(self: Task) -> int:
    runtime = _runtime(self)
    now = utcnow()
    with unit_of_work(runtime.session_factory) as session:
        claimed = claim_due_deliveries(session, now=now)
        stale = stale_deliveries(session, now=now)
        send_batch = self.app.tasks["digest.send_batch"]
        for batch in chunks(claimed + stale, runtime.settings.send_batch_size):
            after_commit(session, partial(send_batch.delay, batch))
    if stale:
        log.warning("dispatch: %d queued digests had lost their task; sent again", len(stale))
    log.info("dispatch: %d digests due", len(claimed))
    return len(claimed)


@shared_task(bind=True, name="digest.send_batch", acks_late=True, **_TRANSIENT)
def send_batch_task(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    result = _runtime(self).send_batch(delivery_ids)
    if result.to_retry:
        # Only the deliveries that hit a transient error go round again; the
        # attempt count on each row bounds how often.
        attempt = (self.request.retries or 0) + 1
        self.app.tasks["digest.send_batch"].apply_async(
            (result.to_retry,),
            countdown=retry_delay(attempt).total_seconds(),
            retries=attempt,
        )
    return result.counts()


@shared_task(bind=True, name="digest.send_notice", acks_late=True, **_TRANSIENT)
def send_notice_task(self: Task, notice: str, subscriber_id: int) -> bool:
    try:
        return _runtime(self).send_notice(Notice(notice), subscriber_id)
    except SendError as exc:
        attempt = self.request.retries or 0
        # In process (the embedded default) the request that asked is waiting: log
        # it and let the person ask again rather than hold them up with retries.
        if (
            exc.permanent
            or attempt + 1 >= _runtime(self).settings.send_max_attempts
            or getattr(self.app, "in_process", False)
        ):
            log.warning("notice %s to subscriber %s not sent: %s", notice, subscriber_id, exc)
            return False
        raise self.retry(exc=exc, countdown=retry_delay(attempt + 1).total_seconds()) from exc
