from __future__ import annotations

import logging

from digest.web.access_log import RedactTokens, redact_access_log, redact_path


def test_signed_tokens_never_reach_the_access_log() -> None:
    assert redact_path("/unsubscribe/eyJhbGciOi.abc-DEF_1") == "/unsubscribe/…"
    assert redact_path("/preferences/TOKEN/data.json") == "/preferences/…/data.json"
    assert redact_path("/feedback/TOKEN?kind=more") == "/feedback/…?kind=more"
    assert redact_path("/confirm-email/TOKEN") == "/confirm-email/…"
    assert redact_path("/") == "/"
    assert redact_path("/health") == "/health"


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    # The shape uvicorn's access logger uses: client, method, path with query, version, status.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/unsubscribe/SECRET-TOKEN", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /unsubscribe/… HTTP/1.1" 200'
    assert "SECRET" not in record.getMessage()


def test_the_filter_is_installed_once() -> None:
    redact_access_log()
    redact_access_log()
    logger = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, RedactTokens) for f in logger.filters) == 1
