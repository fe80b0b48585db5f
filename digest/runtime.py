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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import RankingConfig, load_ranking_config
from config.settings import Settings
from config.sources import SourceConfig, enabled_source_configs, load_source_configs
from digest.bounces.events import MailEvent
from digest.bounces.policy import BouncePolicy
from digest.bounces.recording import RecordedEvent, record_event
from digest.bounces.smtp import refusal_event
from digest.clock import utcnow
from digest.db.engine import make_engine, make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import (
    Lease,
    Outcome,
    Result,
    RetryPolicy,
    claim_for_mail,
    count_pending,
    record_results,
    renew_lease,
)
from digest.delivery.mail_stage import (
    KnownPapers,
    MailItem,
    failure,
    load_mail_items,
    prepare,
    sent,
)
from digest.delivery.models import Delivery
from digest.delivery.rank_stage import Ranked, rank_deliveries
from digest.inbound.processing import InboundMail, Received
from digest.inbound.recipients import InboundAddresses, Recipient
from digest.mail.bounces import BounceAddresses
from digest.mail.identity import SiteIdentity
from digest.mail.outgoing import OutgoingMessage
from digest.mail.rendering import make_environment
from digest.mail.sender import Sender, SendError
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.subscriptions.links import Links
from digest.subscriptions.notices import NoticeComposer
from digest.subscriptions.subscribers import Notice, find_subscriber
from digest.subscriptions.tokens import Signer

if TYPE_CHECKING:
    from digest.bounces.sns import Fetch, SnsVerifier
    from digest.mail.dkim import DkimSigner
    from digest.metrics.status import Status
    from digest.papers.ingest import Progress, SourceSummary
    from digest.papers.sources import Item
    from digest.papers.sources.http import Fetcher
    from digest.ranking.ranker import TrendingRanker
    from digest.ranking.semantic import Embedder
    from digest.subscriptions.library import ImportSummary, ParsedLibrary

# The ranking (NumPy, SciPy, the ranker's libraries), ingest (HTTP, HTML and LaTeX
# libraries) and a reader's library import are imported by the methods that use
# them: a mail-only worker, whose prefork children start from what its main process
# imported, never loads them.

log = logging.getLogger(__name__)


@dataclass
class MailBatch:
    """What a mail task did with its ids: outcome per delivery id it held."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    # Back-off before each retried delivery's next attempt, in seconds.
    retry_in: dict[int, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.value for o in self.outcomes.values()))


@dataclass
class BatchResult:
    """``send_batch``: ranked, then mailed, in this process."""

    outcomes: dict[int, Outcome | str] = field(default_factory=dict)


# After this many transient failures in a row the server is down: the rest of the
# batch is put back for later instead of each waiting for its own timeout.
FAILURES_IN_A_ROW_MEANING_DOWN = 3


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        provider_fetch: Fetch | None = None,
        paper_fetcher: Callable[[], Fetcher] | None = None,
        **engine_options: Any,
    ) -> None:
        self.settings = settings
        self.engine_options = engine_options
        # What GETs providers' URLs (SNS certificates and confirmations); None: HTTPS.
        # Tests pass one answering for the hosts outside the machine.
        self.provider_fetch = provider_fetch
        # What builds the fetcher of papers (the sources, a reader's library); None:
        # the polite HTTP one. Tests pass one answered by recorded responses.
        self.paper_fetcher = paper_fetcher

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
            reply_to=self.settings.reply_to or None,
            feedback_sender_id=self.settings.feedback_sender_id,
        )

    @cached_property
    def bounces(self) -> BounceAddresses:
        return BounceAddresses(self.settings.secret_key, self.site.from_domain)

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
        return DigestComposer(self.templates, self.links, self.site, self.bounces)

    @cached_property
    def known_papers(self) -> KnownPapers:
        # The mail stage's papers, kept from chunk to chunk of this process.
        return KnownPapers()

    @cached_property
    def notices(self) -> NoticeComposer:
        return NoticeComposer(self.templates, self.links, self.site, self.bounces)

    @cached_property
    def ranking_config(self) -> RankingConfig:
        return load_ranking_config(self.settings.ranking_file)

    @cached_property
    def embedder(self) -> Embedder | None:
        from digest.ranking.semantic import load_embedder

        return load_embedder(self.ranking_config.relevance.semantic)

    @cached_property
    def ranker(self) -> TrendingRanker:
        from digest.ranking.ranker import TrendingRanker

        return TrendingRanker(
            window=timedelta(days=self.settings.candidate_window_days),
            config=self.ranking_config,
            embedder=self.embedder,
        )

    @cached_property
    def sender(self) -> Sender:
        # Imported here: a worker serving metrics sets up prometheus_client's
        # multiprocess mode before its first import (digest.metrics.instruments).
        from digest.mail.signing import signing
        from digest.metrics.instruments import mail_metrics

        smtp = SmtpSender(
            SmtpConfig.from_url(
                self.settings.smtp_url,
                timeout=self.settings.smtp_timeout_seconds,
                connections=self.settings.smtp_connections,
                rate=self.settings.smtp_rate,
            ),
            observer=mail_metrics(),
        )
        return signing(smtp, self.dkim_signer)

    @cached_property
    def dkim_signer(self) -> DkimSigner | None:
        """The DKIM signer when a key is configured. Its key is read and checked here,
        so a missing or broken key stops a process at its first email, saying why,
        instead of sending mail that DMARC would junk."""
        settings = self.settings
        if settings.dkim_private_key_file is None:
            return None
        from digest.mail.dkim import DkimKey, DkimSigner

        signer = DkimSigner(
            domain=settings.dkim_domain,
            selector=settings.dkim_selector,
            key=DkimKey.read(settings.dkim_private_key_file),
        )
        from_domain = self.site.from_domain.encode("idna").decode("ascii").lower()
        if not (
            from_domain == signer.domain
            or from_domain.endswith("." + signer.domain)
            or signer.domain.endswith("." + from_domain)
        ):
            # Valid DKIM, but DMARC (relaxed alignment) wants d= and From to share
            # their organisational domain; a parent or child of From is the usual case.
            log.warning(
                "DKIM signs for %s but mail is From %s: DMARC alignment may fail",
                signer.domain,
                from_domain,
            )
        return signer

    def source_configs(self) -> list[SourceConfig]:
        # Read at each use, not cached: beat and `digest ingest` see an edited file.
        return load_source_configs(self.settings.sources_file, self.settings.sources)

    def enabled_source_configs(self) -> list[SourceConfig]:
        return enabled_source_configs(self.settings.sources_file, self.settings.sources)

    def fetcher(self) -> Fetcher:
        if self.paper_fetcher is not None:
            return self.paper_fetcher()
        from digest.papers.sources.registry import make_fetcher

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
        from digest.papers.ingest import ingest
        from digest.papers.sources.registry import build_source, source_for

        fetcher = self.fetcher()
        try:
            sources = (
                [source_for(self.source_configs(), fetcher, source)]
                if source
                else [build_source(c, fetcher) for c in self.enabled_source_configs()]
            )
            moment = now or utcnow()
            with unit_of_work(self.session_factory) as session:
                summaries = ingest(session, sources, now=moment, fetcher=fetcher, progress=progress)
        finally:
            fetcher.close()
        if any(s.new or s.updated for s in summaries):
            self.embed_new_papers(now=moment)
        return summaries

    def fetch_arxiv(self, arxiv_ids: Sequence[str]) -> list[Item]:
        """The arXiv API's records of these ids (a reader's library), asked for
        ``ARXIV_IDS_PER_REQUEST`` at a time through the polite fetcher."""
        # Imported here, as build_source imports each kind: lxml loads when used.
        from digest.papers.sources.arxiv_api import ArxivApiSource
        from digest.subscriptions.library import ARXIV_IDS_PER_REQUEST

        fetcher = self.fetcher()
        # Someone waits on a page for this: one retry, and never minutes of Retry-After
        # (a refusal says "arXiv could not be asked", and the import goes on without it).
        fetcher.max_retries = min(fetcher.max_retries, 1)
        fetcher.max_retry_after = min(fetcher.max_retry_after, 10.0)
        try:
            source = ArxivApiSource(
                fetcher=fetcher, id_list=arxiv_ids, page_size=ARXIV_IDS_PER_REQUEST
            )
            return list(source.fetch())
        finally:
            fetcher.close()

    def import_library(
        self, email: str, parsed: ParsedLibrary, *, now: datetime | None = None
    ) -> ImportSummary:
        """A reader's pasted ids or BibTeX/RIS file as their "more like this" papers.
        arXiv is asked between the two transactions, so none waits on it."""
        from digest.subscriptions.library import import_library, missing_arxiv_ids, prefetched

        with unit_of_work(self.session_factory) as session:
            # An unknown reader costs no request to arXiv.
            if find_subscriber(session, email) is None:
                raise LookupError(f"no subscriber {email}")
            missing = missing_arxiv_ids(session, parsed)
        fetch = prefetched(self.fetch_arxiv, missing)
        with unit_of_work(self.session_factory) as session:
            subscriber = find_subscriber(session, email)
            if subscriber is None:
                raise LookupError(f"no subscriber {email}")
            return import_library(session, subscriber, parsed, fetch=fetch, now=now or utcnow())

    def embed_new_papers(self, *, now: datetime | None = None) -> int:
        """Embeddings of the ranking window's new papers, stored at ingest (when semantic
        matching is on): the rank stage then reads them instead of computing them, and
        the first email after an ingest goes out in seconds. Its own transaction, so a
        failure here never undoes the stored papers; the rank stage would embed them."""
        moment = now or utcnow()
        try:
            embedder = self.embedder
            if embedder is None:
                return 0
            from digest.ranking.semantic import embed_new_papers

            with unit_of_work(self.session_factory) as session:
                count = embed_new_papers(
                    session, embedder, start=moment - self.ranker.window, end=moment
                )
        except Exception:
            log.exception("embedding the new papers failed; the rank stage will embed them")
            return 0
        if count:
            log.info("embedded %d new papers", count)
        return count

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        settings = self.settings
        return RetryPolicy(
            first=timedelta(seconds=settings.send_retry_first_seconds),
            cap=timedelta(seconds=settings.send_retry_max_seconds),
            give_up_daily=timedelta(hours=settings.send_give_up_after_hours),
            give_up_weekly=timedelta(hours=settings.send_give_up_after_hours_weekly),
        )

    @cached_property
    def bounce_policy(self) -> BouncePolicy:
        return BouncePolicy(
            soft_limit=self.settings.bounce_soft_limit,
            soft_window=timedelta(days=self.settings.bounce_soft_window_days),
        )

    @cached_property
    def inbound_addresses(self) -> InboundAddresses:
        """The addresses `digest inbound` takes mail for (everything else gets 550)."""
        local_part = self.site.unsubscribe_mailto.rsplit("@", 1)[0]
        return InboundAddresses(
            self.bounces,
            domain=self.site.from_domain,
            unsubscribe_local_part=local_part,
            report_addresses=self.settings.inbound_report_address_list,
        )

    @cached_property
    def inbound_mail(self) -> InboundMail:
        policy = self.bounce_policy

        def record(session: Session, event: MailEvent, now: datetime) -> object | None:
            return record_event(session, event, now=now, policy=policy)

        return InboundMail(self.bounces, self.signer, record)

    def receive_mail(
        self, raw: bytes, recipients: Sequence[Recipient], *, now: datetime | None = None
    ) -> Received:
        """One message `digest inbound` accepted, acted on in one transaction."""
        with unit_of_work(self.session_factory) as session:
            return self.inbound_mail.receive(session, raw, recipients, now=now or utcnow())

    @cached_property
    def sns_verifier(self) -> SnsVerifier | None:
        """Believes SNS messages for ``DIGEST_SES_TOPIC_ARN``; None when it is unset."""
        # Imported here: cryptography is loaded only by a process that checks signatures.
        from digest.bounces.sns import SnsVerifier, https_fetch

        topics = self.settings.ses_topic_arns
        if not topics:
            return None
        return SnsVerifier(self.provider_fetch or https_fetch, topics=topics)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.send_lease_seconds)

    def rank_batch(self, delivery_ids: list[int], *, now: datetime | None = None) -> Ranked:
        """Rank the queued deliveries among these ids and store their picks (one commit)."""
        with unit_of_work(self.session_factory) as session:
            result = rank_deliveries(session, delivery_ids, ranker=self.ranker, now=now or utcnow())
        log.info("ranked batch of %d: %s", len(delivery_ids), result.counts())
        return result

    def mail_batch(self, delivery_ids: list[int], *, now: datetime | None = None) -> MailBatch:
        """Claim the ranked deliveries among these ids, send them, record the outcomes.

        Outcomes are committed every ``mail_commit_every`` messages, and the lease on
        the rest renewed with them once half of it has gone: a worker killed mid-batch
        leaves at most that group sent but not recorded, sent again (same Message-ID)
        once its lease expires. Never imports the ranking's models.
        """
        clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
        batch = MailBatch()
        with unit_of_work(self.session_factory) as session:
            held = claim_for_mail(session, delivery_ids, now=clock(), lease=self.lease)
        if not held.ids:
            return batch
        with unit_of_work(self.session_factory) as session:
            items = load_mail_items(
                session,
                held.ids,
                known=self.known_papers,
                trending_size=self.ranking_config.selection.trending_section_size,
            )
        policy = self.retry_policy
        composer = self.composer
        # A kill loses what was sent but not recorded: the results waiting for their
        # group plus the messages in flight. Both together stay within the setting.
        every = max(1, self.settings.mail_commit_every - self.sender.max_in_flight)
        results: list[Result] = []
        sending: dict[str, MailItem] = {}
        in_a_row = 0
        down: SendError | None = None
        renew_at = clock() + self.lease / 2
        holding = set(held.ids)

        def flush() -> None:
            nonlocal held, holding, results, renew_at
            moment = clock()
            bounces = [r.bounce for r in results if r.bounce is not None]
            with unit_of_work(self.session_factory) as session:
                record_results(session, held, results, now=moment)
                # With the outcome, so a reader refused for good is bounced before
                # the next edition is claimed for them.
                recorded = [
                    record_event(session, b, now=moment, policy=self.bounce_policy) for b in bounces
                ]
                holding.difference_update(r.delivery_id for r in results)
                if moment >= renew_at:
                    # Renewed only once half the lease has gone, not with every
                    # group: a statement over every held id each time, for a lease
                    # that a group takes a fraction of a second of. Outcomes are
                    # written under the token the rows hold, renewed or not.
                    remaining = Lease(held.token, sorted(holding))
                    held = renew_lease(session, remaining, now=moment, lease=self.lease)
                    holding = set(held.ids)
                    renew_at = moment + self.lease / 2
            _count_events(bounces, recorded)
            for r in results:
                batch.outcomes[r.delivery_id] = r.outcome
                if r.retry_at is not None:
                    batch.retry_in[r.delivery_id] = (r.retry_at - moment).total_seconds()
            results = []

        def record(result: Result) -> None:
            results.append(result)
            if len(results) >= every or clock() >= renew_at:
                flush()

        def messages() -> Iterator[OutgoingMessage]:
            for item in items:
                if item.delivery_id not in holding:
                    # Taken over by another task after our lease lapsed: theirs now.
                    continue
                if down is not None:
                    record(failure(item, down, policy=policy, now=clock()))
                    continue
                prepared = prepare(item, composer=composer, now=clock())
                if isinstance(prepared, Result):
                    record(prepared)
                    continue
                sending[prepared.message_id] = item
                yield prepared

        def on_result(message: OutgoingMessage, error: SendError | None) -> None:
            nonlocal in_a_row, down
            item = sending.pop(message.message_id)
            result = sent(item, message, error, policy=policy, now=clock())
            in_a_row = in_a_row + 1 if result.outcome == Outcome.RETRY else 0
            if in_a_row >= FAILURES_IN_A_ROW_MEANING_DOWN and down is None:
                down = SendError(
                    f"not tried, the server looks down: {result.error}", permanent=False
                )
            record(result)

        self.sender.send_many(messages(), on_result)
        if results:
            flush()
        log.info("mailed batch of %d: %s", len(delivery_ids), batch.counts())
        return batch

    def send_batch(self, delivery_ids: list[int], *, now: datetime | None = None) -> BatchResult:
        """Both stages in this process: rank the queued ones, then mail what is ranked."""
        ranked = self.rank_batch(delivery_ids, now=now)
        mailed = self.mail_batch(delivery_ids, now=now)
        outcomes: dict[int, Outcome | str] = dict.fromkeys(delivery_ids, "already-done")
        with unit_of_work(self.session_factory) as session:
            statuses = {
                i: state
                for i, state in session.execute(
                    select(Delivery.id, Delivery.status).where(Delivery.id.in_(delivery_ids))
                )
            }
        for delivery_id in delivery_ids:
            if delivery_id in mailed.outcomes:
                outcomes[delivery_id] = mailed.outcomes[delivery_id]
            elif delivery_id not in ranked.ranked and statuses.get(delivery_id) in (
                "skipped",
                "failed",
            ):
                outcomes[delivery_id] = Outcome(str(statuses[delivery_id]))
        return BatchResult(outcomes)

    def status(self, queues: Sequence[str], *, now: datetime | None = None) -> Status:
        """Delivery, ingest and the broker's ``queues`` as they stand (``digest status``,
        ``/metrics``)."""
        from digest.metrics.status import read_status

        return read_status(
            self.session_factory,
            broker_url=self.settings.broker_url,
            queues=queues,
            now=now or utcnow(),
        )

    def pending_deliveries(self) -> int:
        """Digests claimed and not settled yet (queued, ranked or being sent)."""
        with unit_of_work(self.session_factory) as session:
            return count_pending(session)

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
        try:
            with self.sender.connection() as connection:
                connection.send(message)
        except SendError as exc:
            # An address change's confirmation goes to the new address, not to the
            # subscriber's own: its refusal is about whoever has that address, if anyone.
            bounce = refusal_event(
                exc,
                recipient=message.recipient,
                occurred_at=now or utcnow(),
                subscriber_id=None if notice == Notice.CONFIRM_EMAIL_CHANGE else subscriber_id,
                message_id=message.message_id,
            )
            if bounce is not None:
                self.record_mail_events([bounce], now=now)
            raise
        log.info("sent %s notice to subscriber %s", notice, subscriber_id)
        return True

    def record_mail_events(
        self, events: Sequence[MailEvent], *, now: datetime | None = None
    ) -> list[RecordedEvent | None]:
        """Store mail events and apply the bounce policy, in one unit of work (what
        the bounce mailbox and the provider webhooks hand over); None for an event
        about nobody we know."""
        moment = now or utcnow()
        with unit_of_work(self.session_factory) as session:
            recorded = [
                record_event(session, event, now=moment, policy=self.bounce_policy)
                for event in events
            ]
        _count_events(events, recorded)
        return recorded

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def _count_events(events: Sequence[MailEvent], recorded: Sequence[RecordedEvent | None]) -> None:
    """Counted once committed: a rolled-back unit of work recorded nothing."""
    if not events:
        return
    from digest.metrics.instruments import mail_event_metrics

    metrics = mail_event_metrics()
    for event, result in zip(events, recorded, strict=True):
        metrics.recorded(event, result)


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
