"""``digest inbound``'s handler on a real SMTP server (aiosmtpd's Controller, in this
process) over the module's database, both backends, with readers who got a digest."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from config.settings import Settings
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import Delivery, DeliveryStatus
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from tests.factories import NOW, make_subscriber
from tests.inbound.running import Inbound, Reader, serve_inbound
from tests.samples import recorded_papers

EDITION = "2026-11-21"


@pytest.fixture
def inbound_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        database_url=database_url, inbound_report_addresses="abuse@example.org, fbl@example.org"
    )


@pytest.fixture
def inbound(inbound_settings: Settings) -> Iterator[Inbound]:
    runtime = Runtime(inbound_settings)
    controller = serve_inbound(runtime)
    try:
        yield Inbound(runtime, controller.hostname, controller.port)
    finally:
        controller.stop()
        runtime.dispose()


@pytest.fixture
def make_reader(inbound: Inbound) -> Callable[[], Reader]:
    """A reader with a sent digest: the delivery row, and the email as composed."""
    runtime = inbound.runtime
    paper = recorded_papers(1)[0]

    def make() -> Reader:
        with unit_of_work(runtime.session_factory) as session:
            subscriber = make_subscriber(session)
            delivery = Delivery(
                subscriber_id=subscriber.id, edition=EDITION, status=DeliveryStatus.SENT
            )
            session.add(delivery)
            session.flush()
            composed = runtime.composer.compose(
                subscriber,
                [Pick(paper=paper, reason="", upvotes=None)],
                delivery_id=delivery.id,
                edition=EDITION,
                now=NOW,
            )
            delivery.message_id = composed.message_id
            return Reader(
                subscriber_id=subscriber.id,
                email=subscriber.email,
                delivery_id=delivery.id,
                digest=composed.outgoing.data,
                verp=composed.outgoing.sender,
                message_id=composed.message_id,
            )

    return make
