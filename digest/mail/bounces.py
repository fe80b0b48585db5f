"""VERP bounce addresses: the envelope sender names what a bounce is about.

A bounce (RFC 3464) goes to the envelope sender (MAIL FROM, the Return-Path the
receiving system records), and many arrive without the original message. So every
message goes out from its own address, ``bounces+d1234-<signature>@domain`` for
delivery 1234, and the address alone says which delivery bounced, with no guessing
from the bounce's text. The signature keeps anyone from bouncing a delivery that is not
theirs by mailing a made-up address.

Local parts are at most 64 octets (RFC 5321 4.5.3.1.1) and some systems fold their
case, so the signature is short and lower-case base32.
"""

from __future__ import annotations

import base64
import enum
import hmac
import re
from dataclasses import dataclass

LOCAL_PART = "bounces"
# 80 bits: forging one address takes 2**80 tries against a rate-limited mailbox.
_SIGNATURE_BYTES = 10
_ADDRESS = re.compile(rf"{LOCAL_PART}\+([dn])([0-9]{{1,19}})-([a-z2-7]{{16}})@(.+)", re.IGNORECASE)


class BounceKind(enum.StrEnum):
    # A digest delivery (deliveries.id).
    DELIVERY = "d"
    # A subscription notice, by its subscriber (subscribers.id).
    NOTICE = "n"


@dataclass(frozen=True)
class BounceTarget:
    kind: BounceKind
    id: int


class BounceAddresses:
    """``addresses.for_delivery(1234)`` is the envelope sender of delivery 1234."""

    def __init__(self, secret_key: str, domain: str) -> None:
        # A key of its own: a bounce address signature is never a valid link token.
        self._key = hmac.digest(secret_key.encode("utf-8"), b"digest.bounce-address", "sha256")
        # The envelope is ASCII whatever the server offers: IDNA for the domain.
        self.domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")

    def for_delivery(self, delivery_id: int) -> str:
        return self._address(BounceKind.DELIVERY, delivery_id)

    def for_notice(self, subscriber_id: int) -> str:
        return self._address(BounceKind.NOTICE, subscriber_id)

    def read(self, address: str) -> BounceTarget | None:
        """What a bounce sent to ``address`` is about; None when we did not sign it."""
        match = _ADDRESS.fullmatch(address.strip().strip("<>"))
        if match is None or match.group(4).lower() != self.domain.lower():
            return None
        kind, number = BounceKind(match.group(1).lower()), int(match.group(2))
        if not hmac.compare_digest(self._signature(kind, number), match.group(3).lower()):
            return None
        return BounceTarget(kind, number)

    def _address(self, kind: BounceKind, number: int) -> str:
        return f"{LOCAL_PART}+{kind.value}{number}-{self._signature(kind, number)}@{self.domain}"

    def _signature(self, kind: BounceKind, number: int) -> str:
        mac = hmac.digest(self._key, f"{kind.value}{number}".encode("ascii"), "sha256")
        return base64.b32encode(mac[:_SIGNATURE_BYTES]).decode("ascii").lower()
