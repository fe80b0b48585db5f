"""Thin task wrappers: open a unit of work, call the domain, publish the next stage.

Arguments are ids and JSON, never ORM objects. Follow-up tasks are published only
after the transaction that created their rows has committed. Delivery runs in
stages, each on its own queue (see workers.app.QUEUES): ``digest.dispatch_due``
claims due digests, ``digest.rank`` stores each reader's picks, ``digest.mail``
sends; ``digest.recover`` republishes what a lost task or a dead worker left.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from celery import Task, shared_task
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.db.unit_of_work import after_commit, unit_of_work
from digest.delivery.ledger import Lost, claim_due_deliveries, find_lost
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
# Without a broker, "later" is the next `digest send-due`: far in the future for
# the sweep, so that everything left pending is tried again now.
_IN_PROCESS_HORIZON = timedelta(days=3650)


def _runtime(task: Task) -> Runtime:
    return cast(Runtime, task.app.runtime)


def _in_process(task: Task) -> bool:
    return bool(getattr(task.app, "in_process", False))


def _publish(task: Task, name: str, ids: list[int], session: Session | None = None) -> None:
    """``name`` for ``ids`` in chunks; after ``session`` commits, when one is given."""
    submit = getattr(task.app, "submit_stage", None)
    send = partial(submit, name) if submit is not None else task.app.tasks[name].delay
    for chunk in chunks(ids, _runtime(task).settings.send_batch_size):
        if session is None:
            send(chunk)
        else:
            after_commit(session, partial(send, chunk))


def _republish_lost(task: Task, session: Session, now: datetime) -> Lost:
    runtime = _runtime(task)
    wait = timedelta(seconds=runtime.settings.sweep_after_seconds)
    horizon = now + _IN_PROCESS_HORIZON if _in_process(task) else now - wait
    lost = find_lost(session, now=now, published_before=horizon)
    _publish(task, "digest.rank", lost.to_rank, session)
    _publish(task, "digest.mail", lost.to_mail, session)
    if lost and not _in_process(task):
        log.warning(
            "sweep: %d digests had lost their task (%d to rank, %d to mail); published again",
            len(lost),
            len(lost.to_rank),
            len(lost.to_mail),
        )
    return lost


@shared_task(bind=True, name="digest.ingest", acks_late=True, **_TRANSIENT)
def ingest_task(self: Task, source: str | None = None) -> list[dict[str, Any]]:
    summaries = _runtime(self).run_ingest(source)
    return [vars(s) for s in summaries]


@shared_task(bind=True, name="digest.dispatch_due", acks_late=True, **_TRANSIENT)
def dispatch_due_task(self: Task) -> int:
    """Claim every due digest and publish its rank task; sweeps too. Returns the count claimed."""
    runtime = _runtime(self)
    now = utcnow()
    with unit_of_work(runtime.session_factory) as session:
        # Swept first: in process everything pending counts as lost, not the new claims.
        _republish_lost(self, session, now)
        claimed = claim_due_deliveries(session, now=now)
        _publish(self, "digest.rank", claimed, session)
    log.info("dispatch: %d digests due", len(claimed))
    return len(claimed)


@shared_task(bind=True, name="digest.recover", acks_late=True, **_TRANSIENT)
def recover_task(self: Task) -> int:
    """Publish again the digests whose rank or mail task was lost, or whose worker died."""
    with unit_of_work(_runtime(self).session_factory) as session:
        lost = _republish_lost(self, session, utcnow())
    return len(lost)


@shared_task(bind=True, name="digest.rank", acks_late=True, **_TRANSIENT)
def rank_task(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    result = _runtime(self).rank_batch(delivery_ids)
    # rank_batch has committed: the mail tasks find the picks stored.
    _publish(self, "digest.mail", result.ranked)
    return result.counts()


@shared_task(bind=True, name="digest.mail", acks_late=True, **_TRANSIENT)
def mail_task(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    result = _runtime(self).mail_batch(delivery_ids)
    if result.retry_in and not _in_process(self):
        # One task per back-off; without a broker the next send-due tries them again.
        by_delay: dict[float, list[int]] = defaultdict(list)
        for delivery_id, seconds in result.retry_in.items():
            by_delay[max(round(seconds), 1)].append(delivery_id)
        for seconds, ids in sorted(by_delay.items()):
            self.app.tasks["digest.mail"].apply_async((ids,), countdown=seconds)
    return result.counts()


@shared_task(bind=True, name="digest.send_batch", acks_late=True, **_TRANSIENT)
def send_batch_task(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    """Before the stages, one task ranked and sent; messages of that kind may still
    sit in a broker. Rank what is queued, then mail what is ranked among them."""
    ranked = _runtime(self).rank_batch(delivery_ids)
    # Every id, not only those ranked now: the mail claim takes only ranked ones.
    _publish(self, "digest.mail", delivery_ids)
    return ranked.counts()


@shared_task(bind=True, name="digest.send_notice", acks_late=True, **_TRANSIENT)
def send_notice_task(self: Task, notice: str, subscriber_id: int) -> bool:
    try:
        return _runtime(self).send_notice(Notice(notice), subscriber_id)
    except SendError as exc:
        attempt = self.request.retries or 0
        runtime = _runtime(self)
        # In process (the embedded default) the request that asked is waiting: log
        # it and let the person ask again rather than hold them up with retries.
        if exc.permanent or attempt + 1 >= runtime.settings.send_max_attempts or _in_process(self):
            log.warning("notice %s to subscriber %s not sent: %s", notice, subscriber_id, exc)
            return False
        delay = runtime.retry_policy.delay(attempt + 1).total_seconds()
        raise self.retry(exc=exc, countdown=delay) from exc
