"""What one process needs to run the pipeline, built once from ``Settings``.

Celery tasks, CLI commands and the web app all go through these functions; each
opens its own units of work and calls the domain.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import RankingConfig, load_ranking_config
from config.settings import Settings
from digest.clock import utcnow
from digest.db.engine import make_engine, make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import Outcome, send_delivery
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.papers.ingest import Progress, SourceSummary, ingest
from digest.papers.sources.registry import (
    build_source,
    enabled_source_configs,
    make_fetcher,
    source_for,
)
from digest.ranking.ranker import TrendingRanker
from digest.ranking.semantic import Embedder, load_embedder
from digest.subscriptions.models import Subscriber, SubscriberStatus
from digest.subscriptions.notices import NoticeComposer
from digest.subscriptions.subscribers import Notice

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    @property
    def to_retry(self) -> list[int]:
        return [i for i, o in self.outcomes.items() if o == Outcome.RETRY]

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.value for o in self.outcomes.values()))


class Runtime:
    def __init__(self, settings: Settings, **engine_options: Any) -> None:
        self.settings = settings
        self.engine_options = engine_options

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url, **self.engine_options)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def composer(self) -> DigestComposer:
        return DigestComposer(self.settings)

    @cached_property
    def ranking_config(self) -> RankingConfig:
        return load_ranking_config(self.settings.ranking_file)

    @cached_property
    def embedder(self) -> Embedder | None:
        return load_embedder(self.ranking_config.relevance.semantic)

    @cached_property
    def ranker(self) -> TrendingRanker:
        return TrendingRanker(
            window=timedelta(days=self.settings.candidate_window_days),
            config=self.ranking_config,
            embedder=self.embedder,
        )

    @cached_property
    def sender(self) -> SmtpSender:
        return SmtpSender(
            SmtpConfig.from_url(self.settings.smtp_url, timeout=self.settings.smtp_timeout_seconds)
        )

    def run_ingest(
        self,
        source: str | None = None,
        *,
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> list[SourceSummary]:
        """Ingest one source (a configured name, or a feed URL or path) or every enabled one."""
        fetcher = make_fetcher(self.settings)
        try:
            sources = (
                [source_for(self.settings, fetcher, source)]
                if source
                else [build_source(c, fetcher) for c in enabled_source_configs(self.settings)]
            )
            with unit_of_work(self.session_factory) as session:
                return ingest(
                    session, sources, now=now or utcnow(), fetcher=fetcher, progress=progress
                )
        finally:
            fetcher.close()

    def send_batch(self, delivery_ids: list[int], *, now: datetime | None = None) -> BatchResult:
        result = BatchResult()
        moment = now or utcnow()
        # The batch's readers are ranked together, in one pass over the candidates.
        with unit_of_work(self.session_factory) as session:
            readers = list(
                session.scalars(
                    select(Subscriber)
                    .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                    .where(
                        Delivery.id.in_(delivery_ids),
                        Delivery.status == DeliveryStatus.QUEUED,
                        Subscriber.status == SubscriberStatus.ACTIVE,
                    )
                )
            )
            if readers:
                self.ranker.prepare(session, readers, now=moment)
        with self.sender.connection() as connection:
            for delivery_id in delivery_ids:
                # One transaction per delivery: a crash loses at most the message in flight.
                with unit_of_work(self.session_factory) as session:
                    result.outcomes[delivery_id] = send_delivery(
                        session,
                        delivery_id,
                        composer=self.composer,
                        ranker=self.ranker,
                        connection=connection,
                        now=moment,
                        max_attempts=self.settings.send_max_attempts,
                    )
        log.info("sent batch of %d: %s", len(delivery_ids), result.counts())
        return result

    @cached_property
    def notices(self) -> NoticeComposer:
        return NoticeComposer(self.settings, self.composer.environment)

    def send_notice(
        self, notice: Notice, subscriber_id: int, *, now: datetime | None = None
    ) -> bool:
        """Send one subscription notice; False when it no longer applies. Raises
        :class:`digest.mailer.SendError` when the SMTP server refuses or fails."""
        with unit_of_work(self.session_factory) as session:
            message = self.notices.compose(session, notice, subscriber_id, now=now or utcnow())
        if message is None:
            log.info("notice %s for subscriber %s no longer applies", notice, subscriber_id)
            return False
        with self.sender.connection() as connection:
            connection.send(message)
        log.info("sent %s notice to subscriber %s", notice, subscriber_id)
        return True

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
