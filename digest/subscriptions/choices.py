"""What a reader chooses and the states a subscription goes through, with the defaults.

Plain enums and numbers, free of the ORM: the CLI's option declarations read them
and ``digest --help`` should not pay for importing SQLAlchemy.
"""

from __future__ import annotations

import enum


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


# A new reader's preferences until they choose their own: the form, the CSV
# import and `digest subscribers add` all start from these.
DEFAULT_FREQUENCY = Frequency.DAILY
DEFAULT_WEEKLY_DAY = 0
DEFAULT_SEND_HOUR = 7
DEFAULT_TIMEZONE = "UTC"
DEFAULT_PAPERS_PER_DIGEST = 5
MAX_PAPERS_PER_DIGEST = 50
