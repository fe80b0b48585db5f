"""RFC 5322 messages: a rendered email with its headers, text and HTML parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digest.mail.addresses import idna_address, needs_smtputf8
from digest.mail.rendering import RenderedEmail

# RFC 5322 allows 998 characters a line. At the default of 78, Python folds a
# long URL header into RFC 2047 encoded words, and no mail client can then read
# the List-Unsubscribe URL.
MESSAGE_POLICY = policy.default.clone(max_line_length=998)
WIRE_POLICY = MESSAGE_POLICY.clone(linesep="\r\n")
# RFC 6532: headers in UTF-8, for a recipient whose local part is beyond ASCII (an
# SMTPUTF8 session carries the message, or nothing does).
UTF8_POLICY = MESSAGE_POLICY.clone(utf8=True)
UTF8_WIRE_POLICY = WIRE_POLICY.clone(utf8=True)
AUTO_SUBMITTED = "auto-generated"


def envelope_sender(message: EmailMessage) -> str:
    sender: str = message["From"].addresses[0].addr_spec
    return sender


@dataclass(frozen=True)
class ListUnsubscribe:
    https_url: str
    mailto: str


def build_message(
    rendered: RenderedEmail,
    *,
    to: str,
    from_address: str,
    message_domain: str,
    date: datetime,
    unsubscribe: ListUnsubscribe | None = None,
    list_id: str | None = None,
    message_id: str | None = None,
    reply_to: str | None = None,
    feedback_id: str | None = None,
) -> EmailMessage:
    to = idna_address(to)
    local, _, domain = to.rpartition("@")
    if needs_smtputf8(to):
        message = EmailMessage(policy=UTF8_POLICY)
        # Address(addr_spec=...) refuses a local part beyond ASCII whatever the policy.
        message["From"] = from_address
        message["To"] = Address(username=local, domain=domain)
    else:
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["From"] = from_address
        message["To"] = Address(addr_spec=to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id or make_msgid(domain=message_domain)
    if reply_to:
        message["Reply-To"] = reply_to
    # RFC 3834: sent by a program, not a person; auto-responders must not answer it.
    message["Auto-Submitted"] = AUTO_SUBMITTED
    if feedback_id:
        message["Feedback-ID"] = feedback_id
    if list_id:
        message["List-Id"] = list_id
    if unsubscribe:
        # RFC 2369 + RFC 8058: clients show an unsubscribe button and POST to the
        # https URL without asking the reader anything more.
        message["List-Unsubscribe"] = f"<{unsubscribe.https_url}>, <{unsubscribe.mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
