"""Readers' addresses as mail systems take them: the domain in IDNA, the local part as
typed (beyond ASCII only an SMTPUTF8 session carries it, RFC 6531/6532)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def idna_address(address: str) -> str:
    """``address`` with its domain IDNA-encoded, or ValueError (a line break, or a domain
    with no IDNA form)."""
    if "\r" in address or "\n" in address:
        raise ValueError(f"line break in address {address!r}")
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    # The email package would write the domain as RFC 2047 encoded words, which no mail
    # system reads as a domain; IDNA is what every one of them understands.
    try:
        ascii_domain = validate_email(f"x@{domain}", check_deliverability=False).ascii_domain
    except EmailNotValidError as exc:
        raise ValueError(f"the domain of {address!r} has no IDNA form: {exc}") from exc
    return f"{local}@{ascii_domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether only an SMTPUTF8 session can carry ``address``: a local part beyond ASCII
    (a domain beyond ASCII has its IDNA form)."""
    return not address.rpartition("@")[0].isascii()
