"""What a bounce or complaint does to a reader (listmonk's rule table, reduced to ours).

- a hard bounce (the address does not exist or never will take mail) bounces the
  reader at once: nothing more is sent to them;
- soft bounces are counted, and ``soft_limit`` of them within ``soft_window``
  bounce the reader (a mailbox that stays full for days is as good as gone);
- a complaint (the reader marked a digest as spam) unsubscribes them at once:
  mailing someone who said "spam" again is what gets a sender blocked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class BouncePolicy:
    soft_limit: int = 3
    soft_window: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.soft_limit < 1:
            raise ValueError("soft_limit must be at least 1")
        if self.soft_window <= timedelta(0):
            raise ValueError("soft_window must be positive")
