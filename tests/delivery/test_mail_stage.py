"""Loading ranked deliveries for the mail stage: readers, stored picks, their papers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from digest.delivery.ledger import claim_due_deliveries
from digest.delivery.mail_stage import KnownPapers, load_mail_items
from digest.delivery.models import DeliveryPaper
from digest.papers.models import Paper
from tests.factories import NOW, make_paper, make_subscriber


def ranked_deliveries(session: Session, paper: Paper, readers: int) -> list[int]:
    for n in range(readers):
        make_subscriber(session, send_hour=0, interests=f"topic {n}")
    ids = claim_due_deliveries(session, now=NOW)
    session.add_all(
        DeliveryPaper(delivery_id=i, paper_id=paper.id, position=0, reason="matches: topic")
        for i in ids
    )
    session.flush()
    return ids


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_chunk_composes_from_what_the_reader_asked_for_and_the_stored_pick(
    session: Session,
) -> None:
    paper = make_paper(session, title="Diffusion at scale")
    [delivery_id] = ranked_deliveries(session, paper, 1)
    session.expunge_all()
    [item] = load_mail_items(session, [delivery_id])
    session.close()
    # Usable once the session is gone: nothing is read lazily while sending.
    assert item.subscriber.interests == "topic 0"
    assert item.subscriber.email.endswith("@example.org")
    assert [(p.paper.shown_title, p.reason) for p in item.picks] == [
        ("Diffusion at scale", "matches: topic")
    ]


def test_papers_an_earlier_chunk_read_are_not_read_again_until_they_change(
    session: Session,
) -> None:
    paper = make_paper(session, title="First title")
    first, second, third = ranked_deliveries(session, paper, 3)
    known = KnownPapers()
    session.expunge_all()
    [item] = load_mail_items(session, [first], known=known)
    assert item.picks[0].paper.shown_title == "First title"

    session.expunge_all()
    with statements(session) as seen:
        [item] = load_mail_items(session, [second], known=known)
    # The deliveries with their readers, the picks: the paper was known.
    assert len(seen) == 2
    assert item.picks[0].paper.shown_title == "First title"

    session.execute(
        update(Paper)
        .where(Paper.id == paper.id)
        .values(title="Second title", updated_at=NOW + timedelta(hours=1))
    )
    session.expunge_all()
    [item] = load_mail_items(session, [third], known=known)
    assert item.picks[0].paper.shown_title == "Second title"
