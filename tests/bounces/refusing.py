"""A real SMTP server (aiosmtpd) that refuses recipients the way real servers word it.

The recipient's local part picks the refusal (replies as Postfix and Gmail send them):
``gone…`` user unknown at RCPT, ``bare…`` a 550 without an enhanced code, ``blocked…``
a policy refusal (5.7.1) at RCPT, ``full…`` a full mailbox (5.2.2), ``late…`` user
unknown only at the end of DATA (a server that checks mailboxes after the message),
``content…`` the message refused at DATA. ``refuse_sender`` refuses MAIL FROM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

AT_RCPT = {
    "gone": "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual "
    "mailbox table",
    "bare": "550 Requested action not taken: mailbox unavailable",
    "blocked": "550 5.7.1 [192.0.2.7] Our system has detected that this message is likely "
    "unsolicited mail.",
    "full": "552 5.2.2 The email account that you tried to reach is over quota.",
}
AT_DATA = {
    "late": "550 5.1.1 <{address}>: user unknown",
    "content": "554 5.6.0 Message content rejected",
}
SENDER_REFUSED = "550 5.7.1 <{address}>: Sender address rejected: Access denied"


@dataclass
class RefusingHandler:
    refuse_sender: bool = False
    accepted: list[str] = field(default_factory=list)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_sender:
            return SENDER_REFUSED.format(address=address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        for prefix, reply in AT_RCPT.items():
            if address.startswith(prefix):
                return reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        [recipient] = envelope.rcpt_tos
        for prefix, reply in AT_DATA.items():
            if recipient.startswith(prefix):
                return reply.format(address=recipient)
        self.accepted.append(recipient)
        return "250 OK"


@dataclass
class RefusingServer:
    controller: Controller
    handler: RefusingHandler

    @property
    def url(self) -> str:
        return f"smtp://{self.controller.hostname}:{self.controller.port}"
