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
    # Imported here: config is imported by digest, not the other way round at load time.
    from digest.papers.sources.registry import enabled_source_configs

    schedule: dict[str, dict[str, Any]] = {
        f"ingest-{config.name}": {
            "task": "digest.papers.ingest",
            "schedule": timedelta(minutes=config.every_minutes or settings.ingest_interval_minutes),
            "args": (config.name,),
        }
        for config in enabled_source_configs(settings)
    }
    return {
        **schedule,
        "dispatch-due-digests": {
            "task": "digest.dispatch_due",
            "schedule": timedelta(minutes=settings.dispatch_interval_minutes),
        },
    }
