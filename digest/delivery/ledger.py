"""The delivery ledger: the state of every digest, changed only by these statements.

A delivery row is unique per subscriber and edition, so claiming due digests is
idempotent (a second dispatcher or beat finds nothing to claim). Each later
state change names the state it leaves, so a task delivered twice, or a sweep
racing a worker, changes nothing the second time. See
:mod:`digest.delivery.models` for the states.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from digest.bounces.events import MailEvent
from digest.db.dialects import insert_ignoring_conflicts, one_of
from digest.db.limits import IN_LIST_CHUNK
from digest.delivery.models import PENDING, Delivery, DeliveryStatus, SkipReason
from digest.delivery.schedule import due_subscribers

_TABLE = cast(Table, Delivery.__table__)


class Outcome(enum.StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    # A transient failure: back to ranked, tried again after a back-off.
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class RetryPolicy:
    """How long transient failures are retried: back-off, and when it is too late."""

    first: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(minutes=5)
    give_up_daily: timedelta = timedelta(hours=20)
    give_up_weekly: timedelta = timedelta(hours=96)

    def delay(self, attempts: int) -> timedelta:
        """Back-off after the ``attempts``-th failed attempt: first, 2x, 4x ..., at most cap."""
        return min(self.first * (1 << min(max(attempts - 1, 0), 30)), self.cap)

    def too_late(self, *, edition: str, created_at: datetime, now: datetime) -> bool:
        # Measured from the claim, which happens when the reader's send hour comes.
        limit = self.give_up_weekly if "-W" in edition else self.give_up_daily
        return now - created_at > limit


@dataclass(frozen=True)
class Lease:
    """Rows one mail task holds; ``token`` is their ``lease_expires_at``."""

    token: datetime
    ids: list[int]


@dataclass(frozen=True)
class Result:
    """What became of one claimed delivery, to be written with others of its group."""

    delivery_id: int
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None
    skip_reason: SkipReason | None = None
    note: str | None = None
    # For a retry: when the next attempt is due.
    retry_at: datetime | None = None
    # A refusal that was the reader's bounce, recorded with the outcome.
    bounce: MailEvent | None = None


@dataclass
class Lost:
    """Deliveries whose stage task was lost, to be published again."""

    to_rank: list[int] = field(default_factory=list)
    to_mail: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.to_rank) + len(self.to_mail)


def claim_due_deliveries(session: Session, *, now: datetime) -> list[int]:
    """Create a queued delivery for every due reader; return only the ids created here."""
    due = due_subscribers(session, now=now)
    if not due:
        return []
    rows = [
        {
            "subscriber_id": sid,
            "edition": edition,
            "status": DeliveryStatus.QUEUED.value,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for sid, edition in due
    ]
    statement = insert_ignoring_conflicts(
        session, Delivery, ["subscriber_id", "edition"]
    ).returning(Delivery.id)
    return sorted(session.scalars(statement, rows).all())


def find_lost(session: Session, *, now: datetime, published_before: datetime) -> Lost:
    """Take back deliveries whose task is gone; each is published again by the caller.

    Queued and ranked rows whose task was published before ``published_before``
    and has not run (broker restarted empty, a worker killed with the task
    prefetched), and sending rows whose lease expired (the worker died mid-send).
    Each is stamped ``now``, so it is published again at most once per sweep delay
    however long the queue in front of it is.
    """
    stale = or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < published_before)
    to_rank = session.scalars(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.QUEUED, stale)
        .values(next_attempt_at=now)
        .returning(Delivery.id),
        execution_options={"synchronize_session": False},
    ).all()
    to_mail = session.scalars(
        update(Delivery)
        .where(
            or_(
                and_(Delivery.status == DeliveryStatus.RANKED, stale),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at < now),
            )
        )
        .values(status=DeliveryStatus.RANKED, lease_expires_at=None, next_attempt_at=now)
        .returning(Delivery.id),
        execution_options={"synchronize_session": False},
    ).all()
    return Lost(sorted(to_rank), sorted(to_mail))


def count_pending(session: Session) -> int:
    """Digests claimed but neither sent nor settled otherwise."""
    return session.scalar(select(func.count()).where(Delivery.status.in_(PENDING))) or 0


def queued(session: Session, delivery_ids: Sequence[int]) -> list[Delivery]:
    """The given deliveries that are still queued, locked for ranking.

    Rows another rank task holds are skipped, not waited for: that task ranks
    them, and if it dies its transaction rolls back and the sweep finds them.
    """
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.QUEUED)
            .order_by(Delivery.id)
            .with_for_update(skip_locked=True)
        )
    )


def mark_ranked(session: Session, rows: Sequence[tuple[int, str | None]], *, now: datetime) -> None:
    """``(delivery id, note)``: the picks are stored, the mail stage may take them."""
    # One statement per note (most readers have none), not one per row: an
    # executemany costs the client a round of parameter handling per row.
    by_note: dict[str | None, list[int]] = {}
    for delivery_id, note in rows:
        by_note.setdefault(note, []).append(delivery_id)
    for note, ids in by_note.items():
        session.execute(
            update(_TABLE)
            .where(
                one_of(session, _TABLE.c.id, ids), _TABLE.c.status == DeliveryStatus.QUEUED.value
            )
            .values(status=DeliveryStatus.RANKED.value, note=note, next_attempt_at=now)
        )


def mark_skipped(
    session: Session,
    rows: Sequence[tuple[int, SkipReason, str]],
    *,
    leaving: DeliveryStatus = DeliveryStatus.QUEUED,
    lease: datetime | None = None,
) -> None:
    """``(delivery id, reason, note)``: nothing is sent, on purpose."""
    _update_many(
        session,
        leaving,
        [{"b_id": i, "b_reason": reason.value, "b_note": note} for i, reason, note in rows],
        lease=lease,
        status=DeliveryStatus.SKIPPED.value,
        skip_reason=bindparam("b_reason"),
        note=bindparam("b_note"),
        lease_expires_at=None,
    )


def mark_failed(
    session: Session,
    rows: Sequence[tuple[int, str]],
    *,
    leaving: DeliveryStatus = DeliveryStatus.QUEUED,
    lease: datetime | None = None,
) -> None:
    """``(delivery id, error)``: given up on, with the error recorded."""
    _update_many(
        session,
        leaving,
        [{"b_id": i, "b_error": error} for i, error in rows],
        lease=lease,
        status=DeliveryStatus.FAILED.value,
        last_error=bindparam("b_error"),
        lease_expires_at=None,
    )


def claim_for_mail(
    session: Session, delivery_ids: Sequence[int], *, now: datetime, lease: timedelta
) -> Lease:
    """Take the ranked deliveries among ``delivery_ids`` (and sending ones whose lease
    expired) for one mail task, in one statement: they are ``sending`` until the lease
    expires, and no other task claims them before."""
    token = now + lease
    claimed = session.scalars(
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            or_(
                Delivery.status == DeliveryStatus.RANKED,
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at < now),
            ),
        )
        .values(
            status=DeliveryStatus.SENDING,
            lease_expires_at=token,
            attempts=Delivery.attempts + 1,
        )
        .returning(Delivery.id),
        execution_options={"synchronize_session": False},
    ).all()
    return Lease(token, sorted(claimed))


def renew_lease(session: Session, held: Lease, *, now: datetime, lease: timedelta) -> Lease:
    """Extend the lease on the rows still held; rows taken over meanwhile are dropped."""
    if not held.ids:
        return held
    token = now + lease
    kept: list[int] = []
    for offset in range(0, len(held.ids), IN_LIST_CHUNK):
        kept.extend(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_(held.ids[offset : offset + IN_LIST_CHUNK]),
                    Delivery.status == DeliveryStatus.SENDING,
                    Delivery.lease_expires_at == held.token,
                )
                .values(lease_expires_at=token)
                .returning(Delivery.id),
                execution_options={"synchronize_session": False},
            )
        )
    return Lease(token, sorted(kept))


def record_results(
    session: Session, held: Lease, results: Sequence[Result], *, now: datetime
) -> None:
    """Write a group of mail outcomes, one statement per kind, for rows still held."""
    by_outcome: dict[Outcome, list[Result]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    sending = DeliveryStatus.SENDING
    if sent := by_outcome.get(Outcome.SENT):
        _update_many(
            session,
            sending,
            [{"b_id": r.delivery_id, "b_message_id": r.message_id} for r in sent],
            lease=held.token,
            status=DeliveryStatus.SENT.value,
            message_id=bindparam("b_message_id"),
            sent_at=now,
            last_error=None,
            lease_expires_at=None,
        )
    if retry := by_outcome.get(Outcome.RETRY):
        _update_many(
            session,
            sending,
            [{"b_id": r.delivery_id, "b_error": r.error, "b_retry_at": r.retry_at} for r in retry],
            lease=held.token,
            status=DeliveryStatus.RANKED.value,
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_retry_at"),
            lease_expires_at=None,
        )
    if failed := by_outcome.get(Outcome.FAILED):
        mark_failed(
            session,
            [(r.delivery_id, r.error or "") for r in failed],
            leaving=sending,
            lease=held.token,
        )
    if skipped := by_outcome.get(Outcome.SKIPPED):
        mark_skipped(
            session,
            [(r.delivery_id, r.skip_reason or SkipReason.OTHER, r.note or "") for r in skipped],
            leaving=sending,
            lease=held.token,
        )


def _update_many(
    session: Session,
    leaving: DeliveryStatus,
    rows: list[dict[str, Any]],
    *,
    lease: datetime | None = None,
    **values: Any,
) -> None:
    """One ``UPDATE ... WHERE id = ? AND status = <leaving>`` executed for every row."""
    if not rows:
        return
    conditions = [_TABLE.c.id == bindparam("b_id"), _TABLE.c.status == leaving.value]
    if lease is not None:
        conditions.append(_TABLE.c.lease_expires_at == lease)
    # The Core table, not the ORM entity: a plain executemany, no ORM bulk semantics.
    session.execute(update(_TABLE).where(*conditions).values(**values), rows)
