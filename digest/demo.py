"""The offline demo: the real pipeline on the embedded default.

SQLite under the data folder, the sample papers shipped in the package, a demo
reader, and a local SMTP sink that stores what it receives. Mail goes through a
real SMTP exchange (aiosmtplib → aiosmtpd); Celery tasks run in-process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from config.settings import Settings
from digest.clock import utcnow
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import Delivery
from digest.delivery.schedule import daily_edition
from digest.mail.sink import SmtpSink, html_part, read_eml
from digest.papers.ingest import SourceSummary
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import add_subscriber, find_subscriber

DEMO_EMAIL = "reader@example.com"
DEMO_INTERESTS = "diffusion, language models, neural architecture search"


@dataclass(frozen=True)
class DeliverySummary:
    edition: str
    status: str
    message_id: str | None
    note: str | None
    titles: list[str]


@dataclass
class DemoResult:
    ingest: list[SourceSummary]
    delivery: DeliverySummary | None
    eml_path: Path | None = None
    html_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def demo_settings(base: Settings, data_dir: Path) -> Settings:
    return base.model_copy(update={"data_dir": data_dir, "database_url": "", "broker_url": ""})


def run_demo(settings: Settings, *, now: datetime | None = None) -> DemoResult:
    # Imported here: the Celery app imports the runtime, which imports this package.
    from workers.app import create_celery

    now = now or utcnow()
    mail_dir = settings.data_dir / "mail"
    with SmtpSink(mail_dir) as sink:
        settings = settings.model_copy(update={"smtp_url": sink.url})
        app = create_celery(settings)
        runtime = app.runtime
        try:
            upgrade(runtime.engine)
            summaries = [
                SourceSummary(**s) for s in app.tasks["digest.ingest"].delay("sample").get()
            ]
            notes = []
            with unit_of_work(runtime.session_factory) as session:
                if find_subscriber(session, DEMO_EMAIL) is None:
                    # Send hour 0 in UTC: the demo reader is always due today.
                    add_subscriber(
                        session,
                        email=DEMO_EMAIL,
                        interests=DEMO_INTERESTS,
                        confirmed=True,
                        send_hour=0,
                        timezone="UTC",
                        now=now,
                    )
                    notes.append(f"created demo subscriber {DEMO_EMAIL} ({DEMO_INTERESTS})")
            before = set(sink.files())
            claimed = app.tasks["digest.dispatch_due"].delay().get()
            with unit_of_work(runtime.session_factory) as session:
                delivery = _summary(
                    session.scalar(
                        select(Delivery)
                        .join(Subscriber)
                        .where(
                            Subscriber.email == DEMO_EMAIL,
                            Delivery.edition == daily_edition(now.date()),
                        )
                    )
                )
            result = DemoResult(ingest=summaries, delivery=delivery, notes=notes)
            new_files = sorted(set(sink.files()) - before)
            if claimed == 0:
                result.notes.append(_why_nothing_was_sent(delivery, now))
            if new_files:
                result.eml_path = new_files[-1]
                result.html_path = result.eml_path.with_suffix(".html")
                result.html_path.write_text(html_part(read_eml(result.eml_path)), encoding="utf-8")
            elif delivery is not None and delivery.message_id:
                result.eml_path, result.html_path = _find_sent(mail_dir, delivery.message_id)
            return result
        finally:
            runtime.dispose()


def _why_nothing_was_sent(delivery: DeliverySummary | None, now: datetime) -> str:
    if delivery is not None:
        return (
            f"nothing new to send: {DEMO_EMAIL} already has today's digest "
            f"(edition {delivery.edition}, {delivery.status})"
        )
    return (
        f"nothing sent: {DEMO_EMAIL} is not an active subscriber any more "
        f"(unsubscribed through its link?); edition {daily_edition(now.date())}"
    )


def _summary(delivery: Delivery | None) -> DeliverySummary | None:
    if delivery is None:
        return None
    titles = [placed.paper.title for placed in delivery.papers]
    return DeliverySummary(
        edition=delivery.edition,
        status=delivery.status.value,
        message_id=delivery.message_id,
        note=delivery.note or delivery.last_error,
        titles=titles,
    )


def _find_sent(mail_dir: Path, message_id: str) -> tuple[Path | None, Path | None]:
    for path in sorted(mail_dir.glob("*.eml")):
        if read_eml(path)["Message-ID"] == message_id:
            html = path.with_suffix(".html")
            return path, html if html.exists() else None
    return None, None
