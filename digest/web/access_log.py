"""Access-log lines without the signed tokens of subscriber links.

A preferences or unsubscribe link works for a year and lets its holder read,
change or delete a reader's data; a log line is no place for it.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"^(/(?:unsubscribe|preferences|confirm|confirm-email|feedback)/)[^/?#]+")


def redact_path(path: str) -> str:
    """``/unsubscribe/<token>/resubscribe?x`` -> ``/unsubscribe/…/resubscribe?x``."""
    return _TOKEN_PATH.sub(r"\1…", path)


class RedactTokens(logging.Filter):
    """For uvicorn's access logger, whose arguments are (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
