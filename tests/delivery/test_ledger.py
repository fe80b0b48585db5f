"""The delivery stages on both backends: claim, rank, lease, mail, outcomes, sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.ranking import load_ranking_config
from digest.delivery.compose import Composed
from digest.delivery.ledger import (
    Outcome,
    Result,
    RetryPolicy,
    claim_due_deliveries,
    claim_for_mail,
    find_lost,
    record_results,
    renew_lease,
)
from digest.delivery.models import (
    Delivery,
    DeliveryPaper,
    DeliveryStatus,
    EditionTrending,
    SkipReason,
)
from digest.delivery.rank_stage import rank_deliveries
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import MailConnection, ResultCallback, SendError
from digest.mail.sink import SmtpSink, free_port
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.feedback import record_feedback
from digest.subscriptions.models import FeedbackKind, Subscriber
from digest.subscriptions.tokens import Purpose, Signer
from tests.factories import NOW, make_paper, make_subscriber

LEASE = timedelta(seconds=60)


def ranker() -> TrendingRanker:
    # A new one per use: its candidate cache must not outlive a test's rolled-back rows.
    return TrendingRanker(window=timedelta(days=7), config=load_ranking_config())


class Killed(BaseException):
    """The worker dying mid-batch: nothing after it runs, not even an except Exception."""


class FakeSender:
    """Records what it was handed, one message at a time; ``fail(recipient)`` decides,
    per message, what happens: a SendError is that message's outcome, anything else
    (``Killed``) ends the sending as a dying process would."""

    max_in_flight = 1

    def __init__(self, fail: Callable[[str], BaseException | None] = lambda _: None) -> None:
        self.fail = fail
        self.sent: list[EmailMessage] = []
        self.tried: list[str] = []

    def connection(self) -> AbstractContextManager[MailConnection]:
        raise AssertionError("digests go through send_many")

    def send_many(self, messages: Iterable[OutgoingMessage], on_result: ResultCallback) -> None:
        for message in messages:
            self.tried.append(message.recipient)
            error = self.fail(message.recipient)
            if error is not None and not isinstance(error, SendError):
                raise error
            if error is None:
                self.sent.append(BytesParser(policy=default).parsebytes(message.data))
            on_result(message, error)


def status(session: Session, delivery_id: int) -> Delivery:
    session.expire_all()
    return session.get_one(Delivery, delivery_id)


def test_claiming_is_idempotent(session: Session) -> None:
    reader = make_subscriber(session, send_hour=0)
    first = claim_due_deliveries(session, now=NOW)
    second = claim_due_deliveries(session, now=NOW)

    assert len(first) == 1 and second == []
    delivery = session.get_one(Delivery, first[0])
    assert (delivery.subscriber_id, delivery.edition, delivery.status) == (
        reader.id,
        "2026-11-21",
        DeliveryStatus.QUEUED,
    )


def test_ranking_stores_the_picks_before_anything_is_sent(session: Session) -> None:
    papers = [make_paper(session, upvotes=n) for n in (5, 50, 20)]
    make_subscriber(session, send_hour=0, papers_per_digest=2)
    [delivery_id] = claim_due_deliveries(session, now=NOW)

    result = rank_deliveries(session, [delivery_id], ranker=ranker(), now=NOW)

    assert result.ranked == [delivery_id]
    delivery = status(session, delivery_id)
    assert delivery.status == DeliveryStatus.RANKED
    assert delivery.paper_ids == [papers[1].id, papers[2].id]
    assert [p.position for p in delivery.papers] == [0, 1]
    assert "50 upvotes" in delivery.papers[0].reason
    # A second rank task for the same ids (redelivered) changes nothing.
    again = rank_deliveries(session, [delivery_id], ranker=ranker(), now=NOW)
    assert again.ranked == [] and status(session, delivery_id).paper_ids == delivery.paper_ids


def test_a_due_digest_is_ranked_mailed_and_recorded(
    session: Session, make_runtime: Callable[..., Runtime], smtp_sink: SmtpSink
) -> None:
    papers = [make_paper(session, upvotes=n) for n in (5, 50, 20)]
    reader = make_subscriber(session, send_hour=0, papers_per_digest=2)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(smtp_url=smtp_sink.url)

    assert runtime.rank_batch([delivery_id], now=NOW).ranked == [delivery_id]
    mailed = runtime.mail_batch([delivery_id], now=NOW)

    assert mailed.outcomes == {delivery_id: Outcome.SENT}
    [received] = smtp_sink.messages()
    delivery = status(session, delivery_id)
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.message_id == received["Message-ID"]
    assert delivery.paper_ids == [papers[1].id, papers[2].id]
    assert delivery.attempts == 1 and delivery.sent_at == NOW
    assert delivery.lease_expires_at is None and delivery.last_error is None
    assert received["To"] == reader.email
    # Sent from the delivery's own bounce address: a bounce names the delivery.
    bounce = runtime.bounces.read(received["Return-Path"])
    assert bounce is not None and bounce.id == delivery_id
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    picked, trending = html.split("Trending today")
    assert papers[1].title in picked and papers[0].title not in picked
    assert "50 upvotes" in picked
    # The edition's trending section: what the reader was not picked, not their picks again.
    assert papers[0].title in trending and "5 upvotes" in trending
    assert papers[1].title not in trending and papers[2].title not in trending
    # Redelivered mail task: the row is not ranked any more, nothing is claimed.
    assert runtime.mail_batch([delivery_id], now=NOW).outcomes == {}
    assert len(smtp_sink.files()) == 1


def test_every_digest_carries_a_working_signed_unsubscribe_link(
    session: Session, make_runtime: Callable[..., Runtime], smtp_sink: SmtpSink
) -> None:
    make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(smtp_url=smtp_sink.url)
    runtime.send_batch(claimed, now=NOW)

    [received] = smtp_sink.messages()
    https, mailto = (v.strip(" <>") for v in received["List-Unsubscribe"].split(","))
    assert https.startswith("https://digest.example.org/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@example.org?subject=unsubscribe")
    claims = Signer(runtime.settings.secret_key).verify(
        Purpose.UNSUBSCRIBE, https.rsplit("/", 1)[1]
    )
    assert claims.subscriber_id == reader.id
    assert https in received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert https in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_no_paper_is_sent_twice_to_the_same_reader(
    session: Session, make_runtime: Callable[..., Runtime], smtp_sink: SmtpSink
) -> None:
    papers = [make_paper(session, upvotes=n) for n in range(4)]
    make_subscriber(session, send_hour=0, papers_per_digest=2)
    runtime = make_runtime(smtp_url=smtp_sink.url)
    [today] = claim_due_deliveries(session, now=NOW)
    runtime.send_batch([today], now=NOW)
    [tomorrow] = claim_due_deliveries(session, now=NOW + timedelta(days=1))
    runtime.__dict__["ranker"] = ranker()
    runtime.send_batch([tomorrow], now=NOW + timedelta(days=1))

    first, second = (status(session, i).paper_ids for i in (today, tomorrow))
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == {p.id for p in papers}


def test_papers_of_a_digest_still_on_its_way_are_not_picked_again(session: Session) -> None:
    make_paper(session, upvotes=5)
    make_subscriber(session, send_hour=0)
    [yesterday] = claim_due_deliveries(session, now=NOW - timedelta(days=1))
    rank_deliveries(session, [yesterday], ranker=ranker(), now=NOW)
    [today] = claim_due_deliveries(session, now=NOW)

    rank_deliveries(session, [today], ranker=ranker(), now=NOW)

    # The only paper is in yesterday's digest, ranked but not sent yet (an outage).
    assert status(session, today).status == DeliveryStatus.SKIPPED
    assert status(session, today).skip_reason == SkipReason.NO_NEW_PAPERS


def test_an_unsubscribe_before_ranking_skips_with_the_reason(session: Session) -> None:
    make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    reader.status = SubscriberStatus.UNSUBSCRIBED
    session.flush()

    assert rank_deliveries(session, [delivery_id], ranker=ranker(), now=NOW).skipped == 1

    delivery = status(session, delivery_id)
    assert (delivery.status, delivery.skip_reason) == (
        DeliveryStatus.SKIPPED,
        SkipReason.UNSUBSCRIBED,
    )
    assert delivery.note == "subscriber is unsubscribed" and delivery.last_error is None


def test_an_unsubscribe_between_ranking_and_mailing_wins(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    sender = FakeSender()
    runtime = make_runtime(sender)
    runtime.rank_batch([delivery_id], now=NOW)
    session.get_one(Subscriber, reader.id).status = SubscriberStatus.PAUSED
    session.flush()

    assert runtime.mail_batch([delivery_id], now=NOW).outcomes == {delivery_id: Outcome.SKIPPED}

    assert sender.tried == []
    delivery = status(session, delivery_id)
    assert (delivery.status, delivery.skip_reason, delivery.note) == (
        DeliveryStatus.SKIPPED,
        SkipReason.PAUSED,
        "subscriber is paused",
    )


def test_nothing_new_or_nothing_relevant_is_skipped_with_its_code(session: Session) -> None:
    make_subscriber(session, send_hour=0)
    [empty] = claim_due_deliveries(session, now=NOW)
    rank_deliveries(session, [empty], ranker=ranker(), now=NOW)
    assert (status(session, empty).skip_reason, status(session, empty).note) == (
        SkipReason.NO_NEW_PAPERS,
        "no new papers for this reader",
    )

    make_paper(session, title="Compilers for tensor programs", upvotes=50)
    make_subscriber(session, send_hour=0, interests="protein folding")
    [unrelated] = claim_due_deliveries(session, now=NOW)
    rank_deliveries(session, [unrelated], ranker=ranker(), now=NOW)
    assert (status(session, unrelated).skip_reason, status(session, unrelated).note) == (
        SkipReason.NOTHING_RELEVANT,
        "nothing relevant enough today",
    )


def test_a_lease_keeps_others_out_until_it_expires_and_fences_the_old_holder(
    session: Session,
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    rank_deliveries(session, [delivery_id], ranker=ranker(), now=NOW)

    first = claim_for_mail(session, [delivery_id], now=NOW, lease=LEASE)
    assert first.ids == [delivery_id] and first.token == NOW + LEASE
    assert status(session, delivery_id).status == DeliveryStatus.SENDING
    # Another task, while the lease holds: nothing for it.
    assert claim_for_mail(session, [delivery_id], now=NOW + LEASE / 2, lease=LEASE).ids == []

    later = NOW + LEASE + timedelta(seconds=1)
    second = claim_for_mail(session, [delivery_id], now=later, lease=LEASE)
    assert second.ids == [delivery_id] and status(session, delivery_id).attempts == 2

    # The first holder, slow but alive, can neither renew nor record any more.
    assert renew_lease(session, first, now=later, lease=LEASE).ids == []
    record_results(session, first, [Result(delivery_id, Outcome.FAILED, error="x")], now=later)
    assert status(session, delivery_id).status == DeliveryStatus.SENDING
    record_results(
        session, second, [Result(delivery_id, Outcome.SENT, message_id="<a@b>")], now=later
    )
    delivery = status(session, delivery_id)
    assert (delivery.status, delivery.message_id, delivery.lease_expires_at) == (
        DeliveryStatus.SENT,
        "<a@b>",
        None,
    )


def test_the_sweep_finds_lost_tasks_and_expired_leases_once_per_delay(session: Session) -> None:
    make_paper(session)
    for _ in range(4):
        make_subscriber(session, send_hour=0)
    queued, ranked, sending, fresh = claim_due_deliveries(session, now=NOW)
    rank_deliveries(session, [ranked, sending], ranker=ranker(), now=NOW)
    claim_for_mail(session, [sending], now=NOW, lease=LEASE)
    session.get_one(Delivery, fresh).next_attempt_at = NOW + timedelta(minutes=2)
    session.flush()
    wait = timedelta(minutes=1)

    # Before the lease expires and before the delay: nothing is lost.
    soon = NOW + timedelta(seconds=30)
    assert len(find_lost(session, now=soon, published_before=soon - wait)) == 0

    later = NOW + timedelta(minutes=2)
    lost = find_lost(session, now=later, published_before=later - wait)
    assert (lost.to_rank, lost.to_mail) == ([queued], sorted([ranked, sending]))
    assert status(session, sending).status == DeliveryStatus.RANKED
    assert status(session, sending).lease_expires_at is None
    # Republished now: not again until the delay has passed once more.
    assert len(find_lost(session, now=later, published_before=later - wait)) == 0
    again = later + 2 * wait
    assert len(find_lost(session, now=again, published_before=again - wait)) == 4


def test_outcomes_are_committed_in_groups_so_a_kill_loses_at_most_one_group(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    readers = [make_subscriber(session, send_hour=0) for _ in range(7)]
    claimed = claim_due_deliveries(session, now=NOW)
    doomed = readers[5].email
    sender = FakeSender(lambda to: Killed() if to == doomed else None)
    # At most three sent and not recorded: groups of two, and one message in flight.
    runtime = make_runtime(sender, mail_commit_every=3)
    runtime.rank_batch(claimed, now=NOW)

    with pytest.raises(Killed):
        runtime.mail_batch(claimed, now=NOW)

    statuses = [status(session, i).status for i in claimed]
    # Two groups of two recorded; the fifth message went out in the group in flight.
    assert statuses == [DeliveryStatus.SENT] * 4 + [DeliveryStatus.SENDING] * 3
    assert len(sender.sent) == 5
    # Once the lease expires another task sends the rest, the fifth again.
    later = NOW + LEASE + timedelta(seconds=1)
    sender.fail = lambda _: None
    outcomes = runtime.mail_batch(claimed, now=later).outcomes
    assert outcomes == dict.fromkeys(claimed[4:], Outcome.SENT)
    assert [str(m["To"]) for m in sender.sent].count(readers[4].email) == 2
    assert {str(m["To"]) for m in sender.sent} == {r.email for r in readers}


def test_one_readers_unexpected_error_fails_that_reader_alone(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    readers = [make_subscriber(session, send_hour=0) for _ in range(3)]
    claimed = claim_due_deliveries(session, now=NOW)
    broken = readers[1].email
    runtime = make_runtime(FakeSender())
    runtime.rank_batch(claimed, now=NOW)
    compose = runtime.composer.compose

    def compose_or_fail(subscriber: Subscriber, *args: Any, **kwargs: Any) -> Composed:
        if subscriber.email == broken:
            raise ValueError("bad data")
        return compose(subscriber, *args, **kwargs)

    runtime.composer.compose = compose_or_fail  # type: ignore[method-assign]

    outcomes = runtime.mail_batch(claimed, now=NOW).outcomes

    assert outcomes == {
        claimed[0]: Outcome.SENT,
        claimed[1]: Outcome.FAILED,
        claimed[2]: Outcome.SENT,
    }
    failed = status(session, claimed[1])
    assert failed.status == DeliveryStatus.FAILED
    assert failed.last_error == "ValueError: bad data"


def test_a_ranking_error_for_one_reader_fails_that_reader_alone(session: Session) -> None:
    make_paper(session)
    readers = [make_subscriber(session, send_hour=0) for _ in range(3)]
    claimed = claim_due_deliveries(session, now=NOW)
    real = ranker()

    class Flaky:
        def pick(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("not used by the rank stage")

        def pick_many(
            self, session: Session, subscribers: list[Subscriber], *, now: datetime
        ) -> object:
            if any(s.id == readers[0].id for s in subscribers):
                raise RuntimeError("corrupt profile")
            return real.pick_many(session, subscribers, now=now)

    result = rank_deliveries(session, claimed, ranker=Flaky(), now=NOW)  # type: ignore[arg-type]

    assert (result.ranked, result.failed) == (claimed[1:], 1)
    failed = status(session, claimed[0])
    assert failed.status == DeliveryStatus.FAILED
    assert failed.last_error == "ranking failed: RuntimeError: corrupt profile"


def test_an_edition_s_trending_section_is_chosen_once_and_shown_less_each_reader_s_picks(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    papers = [make_paper(session, upvotes=n) for n in (5, 50, 20, 10)]
    readers = [make_subscriber(session, send_hour=0, papers_per_digest=1) for _ in range(2)]
    first, second = claim_due_deliveries(session, now=NOW)
    sender = FakeSender()
    runtime = make_runtime(sender)

    # Ranked by two tasks: the second finds the edition's section stored and keeps it.
    runtime.rank_batch([first], now=NOW)
    stored = session.execute(
        select(EditionTrending.position, EditionTrending.paper_id).order_by(
            EditionTrending.position
        )
    ).all()
    runtime.rank_batch([second], now=NOW + timedelta(minutes=5))
    assert [(p, i) for p, i in stored] == [
        (0, papers[1].id),
        (1, papers[2].id),
        (2, papers[3].id),
        (3, papers[0].id),
    ]
    assert session.scalar(select(func.count()).select_from(EditionTrending)) == 4
    runtime.mail_batch([first, second], now=NOW)

    assert [m["To"] for m in sender.sent] == [r.email for r in readers]
    for message in sender.sent:
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        picked, section = text.split("Trending today")
        # Each reader's own pick is the day's top paper; the section is the next three.
        assert papers[1].title in picked and papers[1].title not in section
        assert [section.index(papers[k].title) for k in (2, 3, 0)] == sorted(
            section.index(papers[k].title) for k in (2, 3, 0)
        )
        assert "20 upvotes" in section


def test_a_trending_section_never_repeats_a_paper_the_reader_was_sent(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    papers = [make_paper(session, upvotes=n) for n in (50, 40, 30, 20, 10)]
    make_subscriber(session, send_hour=0, papers_per_digest=1)
    sender = FakeSender()
    runtime = make_runtime(sender)
    [monday] = claim_due_deliveries(session, now=NOW)
    runtime.send_batch([monday], now=NOW)
    tuesday_at = NOW + timedelta(days=1)
    [tuesday] = claim_due_deliveries(session, now=tuesday_at)
    runtime.send_batch([tuesday], now=tuesday_at)

    first, second = (m.get_body(("plain",)).get_content() for m in sender.sent)  # type: ignore[union-attr]
    sent_monday = status(session, monday).paper_ids
    assert sent_monday and status(session, tuesday).paper_ids != sent_monday
    [monday_paper] = [p for p in papers if p.id in sent_monday]
    # Monday's pick is never in Tuesday's digest, its trending section included.
    assert monday_paper.title in first and monday_paper.title not in second
    assert "Trending today" in second


def test_a_trending_section_leaves_out_the_readers_own_papers(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    own, *others = [make_paper(session, upvotes=n) for n in (50, 40, 30, 20, 10)]
    reader = make_subscriber(session, send_hour=0, papers_per_digest=1)
    # From their library (digest subscribers library): asked more of, never sent.
    record_feedback(session, reader, own.id, FeedbackKind.MORE, now=NOW)
    sender = FakeSender()
    [delivery] = claim_due_deliveries(session, now=NOW)
    make_runtime(sender).send_batch([delivery], now=NOW)

    [message] = sender.sent
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Trending today" in text and others[0].title in text
    assert own.title not in text


def test_a_trending_section_of_size_0_is_left_out(
    session: Session, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    make_paper(session, upvotes=50)
    make_paper(session, upvotes=5)
    make_subscriber(session, send_hour=0, papers_per_digest=1)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    ranking = tmp_path / "ranking.toml"
    ranking.write_text("[selection]\ntrending_section_size = 0\n", encoding="utf-8")
    sender = FakeSender()
    runtime = make_runtime(sender, ranking_file=ranking)
    runtime.__dict__["ranker"] = TrendingRanker(
        window=timedelta(days=7), config=runtime.ranking_config
    )

    runtime.rank_batch([delivery_id], now=NOW)
    runtime.mail_batch([delivery_id], now=NOW)

    assert session.scalar(select(func.count()).select_from(EditionTrending)) == 0
    [message] = sender.sent
    for subtype in ("plain", "html"):
        assert "Trending" not in message.get_body((subtype,)).get_content()  # type: ignore[union-attr]


def test_a_permanent_refusal_fails_for_good(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(FakeSender(lambda _: SendError("550 no such user", permanent=True)))
    runtime.rank_batch(claimed, now=NOW)

    assert runtime.mail_batch(claimed, now=NOW).outcomes == {claimed[0]: Outcome.FAILED}
    assert status(session, claimed[0]).last_error == "550 no such user"


def test_an_smtp_outage_delays_mail_until_the_edition_is_too_old(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    down = SendError("SMTP unavailable: connection refused", permanent=False)
    runtime = make_runtime(FakeSender(lambda _: down))
    runtime.rank_batch([delivery_id], now=NOW)

    # Far more attempts than the old five, over many hours: still waiting, not failed.
    moments = [NOW + timedelta(minutes=m) for m in (0, 1, 3, 10, 60, 300, 900, 1100)]
    for moment in moments:
        mailed = runtime.mail_batch([delivery_id], now=moment)
        assert mailed.outcomes == {delivery_id: Outcome.RETRY}
        delivery = status(session, delivery_id)
        assert delivery.status == DeliveryStatus.RANKED
        assert delivery.next_attempt_at == moment + runtime.retry_policy.delay(delivery.attempts)
    assert delivery.attempts == len(moments)
    assert delivery.last_error == "SMTP unavailable: connection refused"

    too_late = NOW + timedelta(hours=20, minutes=1)
    assert runtime.mail_batch([delivery_id], now=too_late).outcomes == {delivery_id: Outcome.FAILED}
    delivery = status(session, delivery_id)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error is not None and "edition too old" in delivery.last_error


def test_a_server_that_is_down_is_not_tried_for_every_reader(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    for _ in range(6):
        make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    sender = FakeSender(lambda _: SendError("421 try later", permanent=False))
    runtime = make_runtime(sender)
    runtime.rank_batch(claimed, now=NOW)

    mailed = runtime.mail_batch(claimed, now=NOW)

    assert len(sender.tried) == 3
    assert mailed.outcomes == dict.fromkeys(claimed, Outcome.RETRY)
    assert {status(session, i).status for i in claimed} == {DeliveryStatus.RANKED}
    assert status(session, claimed[-1]).last_error == (
        "not tried, the server looks down: 421 try later"
    )


def test_a_real_refused_connection_is_a_retry(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(smtp_url=f"smtp://127.0.0.1:{free_port()}", smtp_timeout_seconds=5)
    runtime.rank_batch(claimed, now=NOW)

    assert runtime.mail_batch(claimed, now=NOW).outcomes == {claimed[0]: Outcome.RETRY}
    delivery = status(session, claimed[0])
    assert delivery.last_error is not None and "SMTP unavailable" in delivery.last_error
    # The picks stay stored for the retry, and do not count as sent if it fails.
    assert len(delivery.paper_ids) == 1


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(first=timedelta(minutes=1), cap=timedelta(minutes=5))
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4, 10, 1000)] == [
        60,
        120,
        240,
        300,
        300,
        300,
    ]
    weekly = datetime(2026, 11, 16, tzinfo=UTC)
    assert not policy.too_late(edition="2026-W47", created_at=weekly, now=weekly + timedelta(2))
    assert policy.too_late(edition="2026-11-16", created_at=weekly, now=weekly + timedelta(2))


def test_a_failed_send_does_not_count_its_papers_as_sent(
    session: Session, make_runtime: Callable[..., Runtime]
) -> None:
    paper = make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(FakeSender(lambda _: SendError("550 no", permanent=True)))
    runtime.send_batch(claimed, now=NOW)
    assert status(session, claimed[0]).status == DeliveryStatus.FAILED
    picks = ranker().pick(session, reader, now=NOW).picks
    assert [p.paper.id for p in picks] == [paper.id]


def test_deliveries_are_ledgered_per_subscriber_and_edition(session: Session) -> None:
    make_subscriber(session, send_hour=0)
    make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    rows = session.execute(select(Delivery.subscriber_id, Delivery.edition)).all()
    assert len(claimed) == 2 and len({tuple(r) for r in rows}) == 2
    assert session.scalars(select(DeliveryPaper)).all() == []


def test_an_address_the_server_cannot_take_fails_that_delivery_alone_with_the_reason(
    session: Session, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    make_paper(session, upvotes=5)
    for email in ("before@example.org", "jörg@example.org", "leser@bücher.example"):
        make_subscriber(session, email=email, send_hour=0)
    claimed = claim_due_deliveries(session, now=NOW)
    # A server without SMTPUTF8: jörg's local part cannot be written in its envelope.
    with SmtpSink(tmp_path / "ascii-only", smtputf8=False) as sink:
        runtime = make_runtime(smtp_url=sink.url)
        runtime.rank_batch(claimed, now=NOW)
        outcomes = runtime.mail_batch(claimed, now=NOW).outcomes
        received = sorted(m["To"] for m in sink.messages())

    by_reader = {status(session, i).subscriber.email: status(session, i) for i in claimed}
    assert {email: d.status for email, d in by_reader.items()} == {
        "before@example.org": DeliveryStatus.SENT,
        "jörg@example.org": DeliveryStatus.FAILED,
        "leser@bücher.example": DeliveryStatus.SENT,
    }
    assert sorted(outcomes.values()) == sorted([Outcome.SENT, Outcome.SENT, Outcome.FAILED])
    reason = by_reader["jörg@example.org"].last_error or ""
    assert "jörg@example.org" in reason and "SMTPUTF8" in reason
    assert received == ["before@example.org", "leser@xn--bcher-kva.example"]
