"""Which addresses ``digest inbound`` takes mail for, and what each one is.

Only ours: the VERP envelope senders we signed (``bounces+d<id>-<sig>@domain``), where
DSNs and many feedback loops arrive; the List-Unsubscribe mailto address
(``unsubscribe@domain``, or ``unsubscribe+<signed token>@domain``); ``postmaster@domain``,
which RFC 5321 (4.5.1) requires a mail domain to take; and the abuse addresses the
operator configured (where a provider's feedback loop was registered). Everything else
is refused at RCPT, so the server relays nothing and never accepts mail it would then
have to bounce (backscatter).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from digest.mail.bounces import LOCAL_PART as BOUNCE_LOCAL_PART
from digest.mail.bounces import BounceAddresses, BounceTarget


class RecipientKind(enum.StrEnum):
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    # postmaster and the configured abuse addresses: reports arrive here unsigned.
    REPORTS = "reports"


@dataclass(frozen=True)
class Recipient:
    kind: RecipientKind
    address: str
    # A verified VERP address: the delivery or notice it names.
    target: BounceTarget | None = None
    # unsubscribe+<token>@domain: the token, still to be verified.
    token: str | None = None


class InboundAddresses:
    def __init__(
        self,
        bounces: BounceAddresses,
        *,
        domain: str,
        unsubscribe_local_part: str,
        report_addresses: Iterable[str] = (),
    ) -> None:
        self.bounces = bounces
        # The domain as the From address writes it and in IDNA: senders use either.
        self.domains = {domain.lower(), _ascii(domain).lower()}
        self.unsubscribe_local_part = unsubscribe_local_part.lower()
        self.report_addresses = {_normal(a) for a in report_addresses if a.strip()}
        self.report_addresses |= {f"postmaster@{d}" for d in self.domains}

    def classify(self, address: str) -> Recipient | None:
        """What mail to ``address`` is; None when we take no mail there."""
        address = address.strip().strip("<>").strip()
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return None
        if _normal(address) in self.report_addresses:
            return Recipient(RecipientKind.REPORTS, address)
        if _ascii(domain).lower() not in {_ascii(d) for d in self.domains}:
            return None
        base, plus, tag = local.partition("+")
        base = base.lower()
        if base == BOUNCE_LOCAL_PART:
            target = self.bounces.read(address)
            # A made-up or altered VERP address is refused like any unknown mailbox.
            return Recipient(RecipientKind.BOUNCE, address, target=target) if target else None
        if base == self.unsubscribe_local_part:
            return Recipient(RecipientKind.UNSUBSCRIBE, address, token=tag if plus else None)
        return None


def _ascii(domain: str) -> str:
    try:
        return domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _normal(address: str) -> str:
    local, _, domain = address.strip().rpartition("@")
    return f"{local.lower()}@{_ascii(domain).lower()}"
