"""Celery beat schedule: how often each periodic task runs.

Only one beat process may run per schedule. Dispatch is safe to run twice anyway:
a delivery row is unique per subscriber and edition, so a second dispatcher finds
nothing left to claim.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config.settings import Settings
from config.sources import enabled_source_configs


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        f"ingest-{config.name}": {
            "task": "digest.ingest",
            "schedule": timedelta(minutes=config.every_minutes or settings.ingest_interval_minutes),
            "args": (config.name,),
        }
        for config in enabled_source_configs(settings.sources_file, settings.sources)
    }
    return {
        **schedule,
        "dispatch-due-digests": {
            "task": "digest.dispatch_due",
            "schedule": timedelta(minutes=settings.dispatch_interval_minutes),
        },
        # Within a minute of a worker's death its digests are mailed by another.
        "recover-lost-digests": {
            "task": "digest.recover",
            "schedule": timedelta(seconds=settings.sweep_interval_seconds),
        },
    }
