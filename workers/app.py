"""The Celery application, built from ``Settings`` by :func:`create_celery`.

``celery -A workers.app worker`` / ``beat`` look up the module's ``app``
attribute: it is built from the environment on that first lookup (module
``__getattr__``), never at import, so importing this module to call
``create_celery(settings)`` reads nothing from the environment. Without a broker
URL the app runs every task eagerly, in process, through the same task code:
that is the embedded default.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, cached_property

from celery import Celery

from config.beat import beat_schedule
from config.ranking import load_ranking_config
from config.settings import Settings, get_settings
from digest.runtime import Runtime

# Each stage scales by itself: `digest worker --queues rank` on the cores that rank,
# `--queues mail` where mail goes out. "celery" is Celery's default queue: tasks
# published before the stages had queues of their own are still served.
QUEUES = ("ingest", "rank", "mail", "celery")
ROUTES = {
    "digest.ingest": {"queue": "ingest"},
    # Claiming and sweeping are cheap and lead to ranking.
    "digest.dispatch_due": {"queue": "rank"},
    "digest.recover": {"queue": "rank"},
    "digest.rank": {"queue": "rank"},
    "digest.send_batch": {"queue": "rank"},
    "digest.mail": {"queue": "mail"},
    "digest.send_notice": {"queue": "mail"},
}


class DigestCelery(Celery):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        super().__init__("digest", set_as_current=False)
        self.settings = settings
        # In process only: where published stages go instead of running inline
        # (``digest send-due --processes``, workers.local_processes).
        self.submit_stage: Callable[[str, list[int]], None] | None = None

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(self.settings)

    @property
    def in_process(self) -> bool:
        return not self.settings.broker_url

    def dispose(self) -> None:
        """Close the database connections of tasks run in this process."""
        if "runtime" in self.__dict__:
            self.runtime.dispose()


def create_celery(settings: Settings) -> DigestCelery:
    # A worker with a bad ranking file refuses to start rather than fail every send.
    load_ranking_config(settings.ranking_file)
    app = DigestCelery(settings)
    eager = not settings.broker_url
    app.conf.update(
        broker_url=settings.broker_url or "memory://localhost/",
        task_always_eager=eager,
        task_eager_propagates=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # Tasks are idempotent (see digest.delivery.ledger), so a task lost with its
        # worker is safely run again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues={name: {"exchange": name, "routing_key": name} for name in QUEUES},
        task_default_queue="celery",
        task_routes=ROUTES,
        # Redis redelivers a task not acknowledged within this time (acks_late: not
        # before it finishes), so it must exceed the longest task and retry
        # countdown. It does not delay recovery from a dead worker: the sweep
        # republishes its digests once their leases expire.
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        beat_schedule=beat_schedule(settings),
        timezone="UTC",
        enable_utc=True,
    )
    # Registers the tasks on this app (they are declared with shared_task).
    import workers.tasks  # noqa: F401

    return app


@cache
def _app_from_environment() -> DigestCelery:
    return create_celery(get_settings())


def __getattr__(name: str) -> DigestCelery:
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
