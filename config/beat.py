"""Celery beat schedule: how often each periodic task runs.

Only one beat process may run per schedule. Dispatch is safe to run twice anyway:
a delivery row is unique per subscriber and edition, so a second dispatcher finds
nothing left to claim.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "ingest-all-sources": {
            "task": "digest.ingest",
            "schedule": timedelta(minutes=settings.ingest_interval_minutes),
        },
        "dispatch-due-digests": {
            "task": "digest.dispatch_due",
            "schedule": timedelta(minutes=settings.dispatch_interval_minutes),
        },
    }
