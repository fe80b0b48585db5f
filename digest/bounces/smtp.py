"""A refusal at send time as a mail event: which 5xx replies are about the reader.

The receiving server's reply says which part of the transaction it refused and,
with an RFC 3463 enhanced status code, why. Only a refusal about the recipient's
mailbox is the reader's bounce; the rest fails the one delivery and leaves the
reader alone:

- a refused ``MAIL FROM`` is about us (our envelope sender, our reputation, the
  relay's configuration); every reader would get it, none of them caused it;
- class X.7 (security or policy: spam filters, blocklists, DMARC, "message refused")
  is about our mail or our sending host, not about whether the mailbox exists
  (RFC 3463 3.8), so it bounces no one even when it comes as 5.7.x at RCPT;
- X.2.2 ("mailbox full") is, in RFC 3463's words, "a persistent transient failure":
  a soft bounce, counted by the policy, not a hard one; X.2.3 (message too long for
  this mailbox) is about our message's size;
- at ``DATA`` only X.1 (addressing) and X.2 (mailbox) codes name the mailbox; any
  other refusal of the content (X.3 system, X.6 media, no code at all) is about
  the message.

At ``RCPT TO``, a 5xx without an enhanced code, or with an X.0, X.1, X.2, X.3 or X.4
code, is the server refusing this recipient for good: a hard bounce, as listmonk
and the large providers count it. X.5 (protocol) and X.6 (content) would be our
mistake, not the reader's.
"""

from __future__ import annotations

import re
from datetime import datetime

from digest.bounces.events import EventKind, MailEvent
from digest.mail.sender import SendError

SOURCE = "smtp"
# "550 5.1.1 <a@b>: Recipient address rejected" -> "5.1.1"; RFC 3463 2: class.subject.detail.
_ENHANCED = re.compile(r"^\s*\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")
_REPLY_CODE = re.compile(r"^\s*\d{3}[ -](?:[245]\.\d{1,3}\.\d{1,3}\s*)?")
_HARD_AT_RCPT = {"0", "1", "2", "3", "4"}


def enhanced_status(reply: str) -> str | None:
    """The RFC 3463 code at the start of an SMTP reply's text, or None."""
    found = _ENHANCED.match(reply)
    return ".".join(found.groups()) if found else None


def refusal_event(
    error: SendError,
    *,
    recipient: str,
    occurred_at: datetime,
    delivery_id: int | None = None,
    subscriber_id: int | None = None,
    message_id: str | None = None,
) -> MailEvent | None:
    """The bounce a send error means for its recipient, or None when it is not the
    reader's (a transient error, a refusal of our sender or of our content)."""
    kind = _kind(error)
    if kind is None:
        return None
    reply = str(error)
    return MailEvent(
        kind=kind,
        source=SOURCE,
        occurred_at=occurred_at,
        recipient=recipient,
        delivery_id=delivery_id,
        subscriber_id=subscriber_id,
        status=enhanced_status(reply),
        reason=_REPLY_CODE.sub("", reply, count=1).strip(),
        raw=reply,
        message_id=message_id,
    )


def _kind(error: SendError) -> EventKind | None:
    if not error.permanent or error.code is None or error.code < 500:
        return None
    if error.command not in ("RCPT", "DATA"):
        # MAIL FROM refused, or nothing refused at all (an address we cannot
        # write into the envelope: our server's limitation, see smtp.py).
        return None
    status = enhanced_status(str(error))
    subject, detail = status.split(".")[1:] if status else (None, None)
    if subject == "7":
        return None
    if subject == "2" and detail == "2":
        return EventKind.SOFT_BOUNCE
    if subject == "2" and detail == "3":
        return None
    if error.command == "RCPT":
        if status is None and error.code == 552:
            # "Exceeded storage allocation" (RFC 5321 4.2.3): a full mailbox again.
            return EventKind.SOFT_BOUNCE
        return EventKind.HARD_BOUNCE if subject is None or subject in _HARD_AT_RCPT else None
    return EventKind.HARD_BOUNCE if subject in ("1", "2") else None
