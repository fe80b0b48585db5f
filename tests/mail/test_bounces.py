"""VERP bounce addresses: each names one message, and only ours are read back."""

from __future__ import annotations

from digest.mail.bounces import BounceAddresses, BounceKind, BounceTarget


def test_an_address_names_its_delivery_and_a_forged_one_names_nothing() -> None:
    addresses = BounceAddresses("secret", "example.org")
    address = addresses.for_delivery(1234)

    assert addresses.read(address) == BounceTarget(BounceKind.DELIVERY, 1234)
    # Receiving systems may change the case of a local part or add angle brackets.
    assert addresses.read(f"<{address.upper()}>") == BounceTarget(BounceKind.DELIVERY, 1234)
    assert addresses.read(addresses.for_notice(1234)) == BounceTarget(BounceKind.NOTICE, 1234)
    local, _, _ = address.partition("-")
    signature = address.split("-")[1].split("@")[0]
    assert addresses.read(address.replace("1234", "1235")) is None
    assert addresses.read(f"{local}-{'a' * len(signature)}@example.org") is None
    assert addresses.read(address.replace("example.org", "other.example")) is None
    assert BounceAddresses("another secret", "example.org").read(address) is None
    assert addresses.read("reader@example.org") is None


def test_an_international_domain_is_written_in_idna_and_local_parts_stay_short() -> None:
    addresses = BounceAddresses("secret", "bücher.example")
    address = addresses.for_delivery(2**63 - 1)
    assert address.isascii() and address.endswith("@xn--bcher-kva.example")
    assert len(address.partition("@")[0]) <= 64
    assert addresses.read(address) == BounceTarget(BounceKind.DELIVERY, 2**63 - 1)
