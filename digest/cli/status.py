"""``digest status``: what the metrics say, for a person: each recent edition's progress,
the broker's queues, and each source's last ingest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from digest.cli.context import open_runtime

if TYPE_CHECKING:
    from datetime import datetime

    from digest.metrics.status import Status


def status() -> None:
    """Show delivery progress, bounces and complaints, queue depths and each source's
    last ingest."""
    from workers.app import QUEUES

    runtime = open_runtime()
    for line in status_lines(runtime.status(QUEUES)):
        typer.echo(line)


def status_lines(snapshot: Status) -> list[str]:
    from digest.bounces.events import EventKind
    from digest.delivery.models import DeliveryStatus
    from digest.metrics.status import RECENT_EVENTS

    lines = ["deliveries (editions of the last 24 h, and anything still pending)"]
    editions = snapshot.editions()
    if not editions:
        lines.append("  none")
    for edition in editions:
        counts = edition.by_status
        shown = [f"due {edition.due}"] + [
            f"{state.value} {counts.get(state, 0)}"
            for state in DeliveryStatus
            if state != DeliveryStatus.SKIPPED
        ]
        skipped = counts.get(DeliveryStatus.SKIPPED, 0)
        reasons = ", ".join(
            f"{reason.value} {n}" for reason, n in sorted(edition.skipped_by_reason.items())
        )
        shown.append(f"skipped {skipped}" + (f" ({reasons})" if reasons else ""))
        lines.append(f"  {edition.edition}: " + ", ".join(shown))

    lines.append("queues")
    if not snapshot.broker_configured:
        lines.append("  no broker: tasks run in process")
    elif snapshot.queues is None:
        lines.append("  broker not reachable")
    else:
        lines.extend(f"  {name}: {count} waiting" for name, count in snapshot.queues.items())

    lines.append("ingest")
    if not snapshot.sources:
        lines.append("  no runs yet")
    for s in snapshot.sources:
        success = _ago(s.last_success_at, snapshot.taken_at) if s.last_success_at else "never"
        lines.append(
            f"  {s.source}: last run {_ago(s.last_run_at, snapshot.taken_at)}, "
            f"last success {success}; {s.runs} runs ({s.failed_runs} failed), "
            f"{s.new} new, {s.updated} updated, {s.unchanged} unchanged, {s.skipped} skipped"
        )

    lines.append(f"bounces and complaints (last {RECENT_EVENTS.days} days)")
    for kind in EventKind:
        by_source = sorted((src, n) for (k, src), n in snapshot.mail_events.items() if k == kind)
        detail = ", ".join(f"{src} {n}" for src, n in by_source)
        total = sum(n for _, n in by_source)
        lines.append(f"  {kind.value}: {total}" + (f" ({detail})" if detail else ""))
    lines.append(f"  bounced readers: {snapshot.bounced_readers}")
    return lines


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        span = f"{seconds} s"
    elif seconds < 7200:
        span = f"{seconds // 60} min"
    elif seconds < 172800:
        span = f"{seconds // 3600} h"
    else:
        span = f"{seconds // 86400} days"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({span} ago)"
