"""normalise_email: every address gets email-validator's own verdict.

Most addresses skip the library's domain check once their domain has been seen
(see ``_plain_address``); these tests hold that shortcut to the library's answer,
address by address, message by message.
"""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from digest.subscriptions.subscribers import InvalidEmail, normalise_email


def library_verdict(address: str) -> str:
    """What normalise_email said before the shortcut: the library on the whole address."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        return str(InvalidEmail(address, str(exc)))


def our_verdict(address: str) -> str:
    try:
        return normalise_email(address)
    except InvalidEmail as exc:
        return str(exc)


LONG_LOCAL = "a" * 64
TRICKY = [
    "ann@example.org",
    "  Ann.Lee+digest@Example.ORG ",
    "Postmaster@Example.ORG",
    "o'brien@example.org",
    "x!#$%&*/=?^_`{|}~-@example.org",
    "ann@example",
    "bob@localhost",
    "x@exa_mple.org",
    "a..b@example.org",
    ".ann@example.org",
    "ann.@example.org",
    "ann@example.org.",
    "ann@.example.org",
    "ann@example..org",
    "ann@-x.org",
    "ann@x-.org",
    "ann@x.123",
    "ann@x.local",
    "ann@example.test",
    "ann@example.invalid",
    "a@b.c0m",
    "ann@[1.2.3.4]",
    "ann@[IPv6:::1]",
    "ann@",
    "@example.org",
    "ann",
    "ann@@example.org",
    "ann@bob@example.org",
    '"ann lee"@example.org',
    '"ann"@example.org',
    "Ann <ann@example.org>",
    "<ann@example.org>",
    "ann lee@example.org",
    "ann@exam ple.org",
    "ann@xn--bcher-kva.example",
    "ann@xn--bcher-kva.com",
    "ann@xn--zz.com",
    "ann@BÜCHER.com",
    "änn@example.org",
    "ann@ex\u200bample.org",
    "ann\u0301@example.org",
    "ann@example.org\u0301",
    "ann＠example.org",
    "ann@" + "a" * 63 + ".org",
    "ann@" + "a" * 64 + ".org",
    "a" * 65 + "@example.org",
    # Around the 254-character limit of a whole address.
    LONG_LOCAL + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org",  # 254
    LONG_LOCAL + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".org",  # 255
    LONG_LOCAL + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 59 + ".org",
    # 254 as typed, in IDNA ASCII: shorter once the domain is decoded.
    LONG_LOCAL + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 43 + ".xn--bcher-kva.org",
    "x@" + ".".join(["a" * 62] * 4),
    "x@" + ".".join(["a" * 63] * 4),
    "",
    "   ",
]


@pytest.mark.parametrize("address", TRICKY)
def test_an_address_gets_the_libraries_verdict(address: str) -> None:
    assert our_verdict(address) == library_verdict(address)
    # Again, now that its domain's verdict is remembered.
    assert our_verdict(address) == library_verdict(address)


def test_generated_addresses_get_the_libraries_verdict() -> None:
    # Fixed seed: the same few thousand addresses every run, mostly near-valid,
    # built from the characters the shortcut's checks are about.
    generator = random.Random(20261203)
    local_chars = "abcXYZ019.+-_'!#~\"@ <>é"
    domains = ["example.org", "Example.COM", "lab7.example.net", "x.io", "ex_ample.org"]
    domain_chars = "abcXYZ019.-_[]@ é"
    addresses = []
    for _ in range(3000):
        local = "".join(generator.choices(local_chars, k=generator.randint(0, 12)))
        if generator.random() < 0.6:
            domain = generator.choice(domains)
        else:
            domain = "".join(generator.choices(domain_chars, k=generator.randint(0, 14)))
        addresses.append(f"{local}@{domain}")
    disagreements = [a for a in addresses if our_verdict(a) != library_verdict(a)]
    assert disagreements == []
    refused = [a for a in addresses if library_verdict(a).startswith("invalid email address")]
    # The corpus exercises both answers.
    assert 300 < len(refused) < 2700
