"""The composition root: every collaborator a process needs, built from ``Settings``.

This is the one place that reads ``Settings``. Domain code receives what it uses
(a sender, the link signer, the site's identity, plain values) and never sees
the settings or the environment. Celery tasks, CLI commands and the web app all
go through a ``Runtime``; each opens its own units of work and calls the domain.
Everything is built on first use: a process that only sends mail never loads
the ranking's embedding model, and importing this module builds nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from jinja2 import Environment
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import RankingConfig, load_ranking_config
from config.settings import Settings
from config.sources import SourceConfig, enabled_source_configs, load_source_configs
from digest.clock import utcnow
from digest.db.engine import make_engine, make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import SendOutcome, send_delivery
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.identity import SiteIdentity
from digest.mail.outgoing import outgoing
from digest.mail.rendering import make_environment
from digest.mail.sender import Sender
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.papers.ingest import Progress, SourceSummary, ingest
from digest.papers.sources.http import Fetcher
from digest.papers.sources.registry import build_source, make_fetcher, source_for
from digest.ranking.ranker import TrendingRanker
from digest.ranking.semantic import Embedder, load_embedder
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber, SubscriberStatus
from digest.subscriptions.notices import NoticeComposer
from digest.subscriptions.subscribers import Notice
from digest.subscriptions.tokens import Signer

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    outcomes: dict[int, SendOutcome] = field(default_factory=dict)

    @property
    def to_retry(self) -> list[int]:
        return [i for i, o in self.outcomes.items() if o == SendOutcome.RETRY]

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
    def site(self) -> SiteIdentity:
        return SiteIdentity(
            name=self.settings.site_name,
            base_url=self.settings.base_url,
            from_address=self.settings.from_address,
        )

    @cached_property
    def signer(self) -> Signer:
        return Signer(self.settings.secret_key)

    @cached_property
    def links(self) -> Links:
        return Links(self.signer, self.site)

    @cached_property
    def templates(self) -> Environment:
        # One environment for every email type: CSS is inlined once per template.
        return make_environment(self.settings.templates_dir)

    @cached_property
    def composer(self) -> DigestComposer:
        return DigestComposer(self.templates, self.links, self.site)

    @cached_property
    def notices(self) -> NoticeComposer:
        return NoticeComposer(self.templates, self.links, self.site)

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
    def sender(self) -> Sender:
        return SmtpSender(
            SmtpConfig.from_url(
                self.settings.smtp_url,
                timeout=self.settings.smtp_timeout_seconds,
                connections=self.settings.smtp_connections,
                rate=self.settings.smtp_rate,
            )
        )

    def source_configs(self) -> list[SourceConfig]:
        # Read at each use, not cached: beat and `digest ingest` see an edited file.
        return load_source_configs(self.settings.sources_file, self.settings.sources)

    def enabled_source_configs(self) -> list[SourceConfig]:
        return enabled_source_configs(self.settings.sources_file, self.settings.sources)

    def fetcher(self) -> Fetcher:
        return make_fetcher(
            site_url=self.settings.base_url,
            timeout=self.settings.fetch_timeout_seconds,
            max_bytes=self.settings.fetch_max_bytes,
        )

    def run_ingest(
        self,
        source: str | None = None,
        *,
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> list[SourceSummary]:
        """Ingest one source (a configured name, or a feed URL or path) or every enabled one."""
        fetcher = self.fetcher()
        try:
            sources = (
                [source_for(self.source_configs(), fetcher, source)]
                if source
                else [build_source(c, fetcher) for c in self.enabled_source_configs()]
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

    def send_notice(
        self, notice: Notice, subscriber_id: int, *, now: datetime | None = None
    ) -> bool:
        """Send one subscription notice; False when it no longer applies. Raises
        :class:`digest.mail.sender.SendError` when the SMTP server refuses or fails."""
        with unit_of_work(self.session_factory) as session:
            message = self.notices.compose(session, notice, subscriber_id, now=now or utcnow())
        if message is None:
            log.info("notice %s for subscriber %s no longer applies", notice, subscriber_id)
            return False
        with self.sender.connection() as connection:
            connection.send(outgoing(message))
        log.info("sent %s notice to subscriber %s", notice, subscriber_id)
        return True

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
