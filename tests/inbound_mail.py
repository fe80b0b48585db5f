"""The recorded and RFC-example reports in tests/fixtures/inbound (see its README)."""

from __future__ import annotations

from email.message import EmailMessage

from digest.bounces.reports import parse_message
from tests.paths import PROJECT_ROOT

INBOUND_FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "inbound"


def fixture_bytes(name: str, replace: dict[str, str] | None = None) -> bytes:
    """The fixture as sent over SMTP (CRLF line ends), with ``replace``'s texts swapped in:
    a test puts its reader's address where the example's recipient was."""
    text = (INBOUND_FIXTURES / name).read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, f"{old!r} is not in {name}"
        text = text.replace(old, new)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def fixture_message(name: str, replace: dict[str, str] | None = None) -> EmailMessage:
    return parse_message(fixture_bytes(name, replace))
