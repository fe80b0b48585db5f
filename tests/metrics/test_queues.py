"""Queue depth per stage, read from a real broker with no worker taking the tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from config.settings import Settings
from digest.mail.sink import free_port
from digest.metrics.queues import queue_depths
from tests.services import RedisDatabase, broker_url
from workers.app import QUEUES, create_celery


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    with broker_url(request.param, RedisDatabase.METRICS_BROKER) as url:
        yield url


def test_each_stage_reports_the_tasks_waiting_in_its_queue(
    broker: str, make_settings: Callable[..., Settings]
) -> None:
    # A queue nothing was published to yet counts as empty, not as an error.
    assert queue_depths(broker, QUEUES) == dict.fromkeys(QUEUES, 0)
    app = create_celery(make_settings(broker_url=broker))
    try:
        for _ in range(3):
            app.tasks["digest.rank"].delay([1, 2])
        app.tasks["digest.mail"].delay([1])
        app.tasks["digest.ingest"].delay("sample")
    finally:
        app.close()
    assert queue_depths(broker, QUEUES) == {"ingest": 1, "rank": 3, "mail": 1, "celery": 0}


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_an_unreachable_broker_is_no_figure_not_an_error(scheme: str) -> None:
    assert queue_depths(f"{scheme}://127.0.0.1:{free_port()}/0", QUEUES) is None
