"""A message ready for the wire: its envelope, its id and its bytes.

What every sender takes. Composing ends here (headers and parts flattened once, CRLF
line ends), so a sender does no MIME work and a message can be handed to any SMTP
session, retried or re-sent exactly as it was first built.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import EmailPolicy

from digest.mail.message import UTF8_WIRE_POLICY, WIRE_POLICY, envelope_sender


@dataclass(frozen=True)
class OutgoingMessage:
    # MAIL FROM, where bounces return: a VERP address naming this message
    # (digest.mail.bounces), or the From header's address.
    sender: str
    # RCPT TO: one reader per message.
    recipient: str
    # As in the Message-ID header, angle brackets included.
    message_id: str
    data: bytes


def outgoing(message: EmailMessage, *, sender: str | None = None) -> OutgoingMessage:
    """An :class:`EmailMessage` flattened for the wire, sent from ``sender`` (the From
    address when None)."""
    (recipient,) = [address.addr_spec for address in message["To"].addresses]
    return OutgoingMessage(
        sender=sender or envelope_sender(message),
        recipient=recipient,
        message_id=str(message["Message-ID"]),
        # Flattened here, not by aiosmtplib, whose 78-column policy would encode the
        # List-Unsubscribe URLs (see MESSAGE_POLICY).
        data=message.as_bytes(policy=UTF8_WIRE_POLICY if _utf8(message) else WIRE_POLICY),
    )


def _utf8(message: EmailMessage) -> bool:
    # Built for a recipient beyond ASCII (digest.mail.message.UTF8_POLICY): RFC 6532.
    return isinstance(message.policy, EmailPolicy) and message.policy.utf8
