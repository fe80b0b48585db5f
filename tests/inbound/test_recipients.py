"""Which RCPT addresses ``digest inbound`` takes: ours, and nothing else."""

from __future__ import annotations

import pytest

from digest.inbound.recipients import InboundAddresses, RecipientKind
from digest.mail.bounces import BounceAddresses, BounceKind, BounceTarget


def addresses(domain: str = "example.org") -> InboundAddresses:
    return InboundAddresses(
        BounceAddresses("test-secret-key", domain),
        domain=domain,
        unsubscribe_local_part="unsubscribe",
        report_addresses=["abuse@example.org", " FBL@Example.org ", ""],
    )


def test_a_signed_verp_address_is_taken_with_what_it_names() -> None:
    inbound = addresses()
    for address, target in (
        (inbound.bounces.for_delivery(42), BounceTarget(BounceKind.DELIVERY, 42)),
        (inbound.bounces.for_notice(7), BounceTarget(BounceKind.NOTICE, 7)),
        # Some systems fold the case of the whole address.
        (inbound.bounces.for_delivery(42).upper(), BounceTarget(BounceKind.DELIVERY, 42)),
    ):
        recipient = inbound.classify(f"<{address}>")
        assert recipient is not None
        assert (recipient.kind, recipient.target) == (RecipientKind.BOUNCE, target)


@pytest.mark.parametrize(
    "address",
    [
        "bounces+d42-aaaaaaaaaaaaaaaa@example.org",  # a signature we did not make
        "bounces@example.org",
        "random@example.org",
        "unsubscribe@elsewhere.example",
        "postmaster@elsewhere.example",
        "abuse@elsewhere.example",
        "someone@example.org.evil.example",
        "no-at-sign",
        "@example.org",
        "",
    ],
)
def test_anything_else_is_refused(address: str) -> None:
    assert addresses().classify(address) is None


def test_a_verp_address_of_another_site_is_refused() -> None:
    theirs = BounceAddresses("test-secret-key", "elsewhere.example").for_delivery(42)
    assert addresses().classify(theirs) is None


def test_the_unsubscribe_address_with_or_without_a_token() -> None:
    inbound = addresses()
    plain = inbound.classify("Unsubscribe@EXAMPLE.org")
    assert plain is not None and (plain.kind, plain.token) == (RecipientKind.UNSUBSCRIBE, None)
    tagged = inbound.classify("unsubscribe+WzEsMl0.aBcD.xyz@example.org")
    assert tagged is not None and tagged.token == "WzEsMl0.aBcD.xyz"


def test_postmaster_and_the_configured_report_addresses() -> None:
    inbound = addresses()
    for address in (
        "postmaster@example.org",
        "PostMaster@example.org",
        "abuse@example.org",
        "fbl@EXAMPLE.ORG",
    ):
        recipient = inbound.classify(address)
        assert recipient is not None and recipient.kind == RecipientKind.REPORTS


def test_an_international_domain_in_either_form() -> None:
    inbound = addresses("bücher.example")
    for domain in ("bücher.example", "xn--bcher-kva.example"):
        recipient = inbound.classify(f"unsubscribe@{domain}")
        assert recipient is not None and recipient.kind == RecipientKind.UNSUBSCRIBE
        assert inbound.classify(f"postmaster@{domain}") is not None
    verp = inbound.bounces.for_delivery(5)
    assert verp.endswith("@xn--bcher-kva.example")
    recipient = inbound.classify(verp)
    assert recipient is not None and recipient.target == BounceTarget(BounceKind.DELIVERY, 5)
