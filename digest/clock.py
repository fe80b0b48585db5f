"""The one clock: aware UTC datetimes everywhere (tests pass ``now`` explicitly)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
