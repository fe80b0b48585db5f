"""What DSNs and feedback reports share: the multipart/report container (RFC 6522).

A report is ``multipart/report; report-type=...`` with a human-readable part first,
a machine-readable part second (its type named by ``report-type``), and, optionally,
the original message (``message/rfc822``) or only its header (``text/rfc822-headers``)
third. Everything here reads mail that anyone on the internet can send us, so each
function tolerates what is missing or malformed and says so by returning None.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime

# What a stored event keeps of what was received: enough to read it, not a whole digest.
RAW_LIMIT = 4000

_SPACE = re.compile(r"\s+")


def parse_message(raw: bytes) -> EmailMessage:
    """The message as the email package reads it; never raises on malformed input
    (defects are recorded on the message instead)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def report_type(message: Message) -> str | None:
    """``delivery-status``, ``feedback-report``... for a multipart/report, else None."""
    if message.get_content_type() != "multipart/report":
        return None
    value = message.get_param("report-type")
    return value.lower().strip() if isinstance(value, str) else None


def parts(message: Message) -> list[Message]:
    payload = message.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def part_of_type(message: Message, content_type: str) -> Message | None:
    return next((p for p in parts(message) if p.get_content_type() == content_type), None)


@dataclass(frozen=True)
class OriginalHeaders:
    """What a report says about the message it is about (ours, if it is about us)."""

    message_id: str | None
    # The envelope sender the receiving system recorded: our VERP address, if ours.
    return_path: str | None
    to: str | None
    # The first List-Unsubscribe URL or mailto, where our signed token is.
    list_unsubscribe: str | None


def original_headers(report: Message) -> OriginalHeaders | None:
    """The returned message's header, from its ``message/rfc822`` part or its
    ``text/rfc822-headers`` part; None when the report carries neither."""
    header: Message | None = None
    returned = part_of_type(report, "message/rfc822")
    if returned is not None:
        inner = returned.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            header = inner[0]
    if header is None:
        headers_part = part_of_type(report, "text/rfc822-headers")
        if headers_part is not None:
            header = HeaderParser(policy=email.policy.default).parsestr(text_of(headers_part))
    if header is None:
        return None
    return OriginalHeaders(
        message_id=_angle(field(header, "Message-ID")),
        return_path=_angle(field(header, "Return-Path")),
        to=field(header, "To"),
        list_unsubscribe=field(header, "List-Unsubscribe"),
    )


def field(block: Message, name: str) -> str | None:
    """One header field as plain text on one line (folding undone), or None."""
    try:
        value = block.get(name)
    except Exception:
        # A header the email package cannot even parse into a value: not there for us.
        return None
    if value is None:
        return None
    text = _SPACE.sub(" ", str(value)).strip()
    return text or None


def typed_value(value: str | None) -> str | None:
    """The value of an RFC 3464 typed field: ``rfc822; User@Example.com`` is
    ``User@Example.com``, ``smtp; 550 5.1.1 ...`` is ``550 5.1.1 ...``."""
    if value is None:
        return None
    _, _, rest = value.partition(";")
    text = (rest if rest else value).strip()
    return text or None


def address_of(value: str | None) -> str | None:
    """A bare address from ``<a@b>``, ``rfc822; a@b`` or ``Name <a@b>``."""
    if value is None:
        return None
    text = typed_value(value) if ";" in value else value
    if text is None:
        return None
    if "<" in text and ">" in text:
        text = text[text.rfind("<") + 1 : text.rfind(">")]
    text = text.strip()
    return text if "@" in text and " " not in text else None


def date_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # A date without a zone (RFC 5322's "-0000") is taken as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def text_of(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def trimmed(text: str) -> str:
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "\n[…]"


def _angle(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value.startswith("<"):
        # RFC 5965's own example writes a Message-ID without its angle brackets.
        value = f"<{value}>" if "@" in value and " " not in value else value
    return value
