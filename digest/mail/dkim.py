"""DKIM signatures (RFC 6376) on every email, with RSA-SHA256 or Ed25519-SHA256 (RFC 8463).

Receivers check the signature against the public key published at
``<selector>._domainkey.<domain>``; DMARC passes when that domain aligns with the
From domain. Gmail and Yahoo require it of bulk senders, and RFC 8058 one-click
unsubscribe only counts when the signature covers both List-Unsubscribe headers.

Parsing and canonicalisation are dkimpy's (the reference implementation, and what
the tests verify with). The private-key step is OpenSSL's, through ``cryptography``:
dkimpy's own RSA runs in Python at some 8 ms a signature, which alone would cap a
core near a hundred digests a second; OpenSSL's takes well under one.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import (
    CanonicalizationPolicy,
    correct_empty_body,
    strip_trailing_lines,
)

# What the signature covers, in this order. A header listed but absent is signed as
# empty (RFC 6376 5.4), so nobody can add a Reply-To or a second List-Unsubscribe
# on the way either; the ones listed twice are oversigned for the same reason.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
    "auto-submitted",
    "mime-version",
    "content-type",
    "from",
    "subject",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
# Relaxed for both: survives MTAs that refold headers or trim trailing spaces.
CANONICALIZATION = b"relaxed/relaxed"
# RFC 8301: verifiers must take 1024 to 4096 bits; below 1024 they must not.
MIN_RSA_BITS = 1024
RECOMMENDED_RSA_BITS = 2048
_SELECTOR = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# Base64 of the signature, folded so no header line passes 78 characters.
_FOLD_AT = 72


class DkimError(ValueError):
    """A key that cannot sign, or a message that cannot be signed."""


class Algorithm(enum.StrEnum):
    RSA = "rsa"
    ED25519 = "ed25519"

    @property
    def tag(self) -> bytes:
        """The signature's ``a=`` tag."""
        return b"rsa-sha256" if self is Algorithm.RSA else b"ed25519-sha256"


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class DkimKey:
    algorithm: Algorithm
    private_key: PrivateKey

    @classmethod
    def from_pem(cls, data: bytes) -> DkimKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise DkimError(f"not an unencrypted PEM private key: {error}") from None
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise DkimError(
                    f"an RSA key of {key.key_size} bits is too short: receivers ignore "
                    f"signatures under {MIN_RSA_BITS} bits (RFC 8301); use {RECOMMENDED_RSA_BITS}"
                )
            return cls(Algorithm.RSA, key)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(Algorithm.ED25519, key)
        raise DkimError(f"DKIM signs with RSA or Ed25519 keys, not {type(key).__name__}")

    @classmethod
    def read(cls, path: Path) -> DkimKey:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DkimError(f"cannot read the DKIM key {path}: {error.strerror}") from None
        try:
            return cls.from_pem(data)
        except DkimError as error:
            raise DkimError(f"{path}: {error}") from None

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_value(self) -> str:
        """The ``p=`` tag: base64 of the DER public key (RSA) or the raw 32 bytes (Ed25519)."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    def dns_value(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        return f"v=DKIM1; k={self.algorithm.value}; p={self.public_value()}"

    def sign_digest(self, digest: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        # RFC 8463 3: Ed25519 over the SHA-256 hash, as the RSA one signs it.
        return self.private_key.sign(digest)


def generate_key(algorithm: Algorithm) -> DkimKey:
    if algorithm is Algorithm.RSA:
        return DkimKey(
            algorithm,
            rsa.generate_private_key(public_exponent=65537, key_size=RECOMMENDED_RSA_BITS),
        )
    return DkimKey(algorithm, ed25519.Ed25519PrivateKey.generate())


def dns_txt_strings(value: str) -> list[str]:
    """``value`` cut into the 255-character strings a TXT record is made of (RFC 1035
    3.3.14): a 2048-bit key is longer than one; DNS joins them back."""
    return [value[i : i + 255] for i in range(0, len(value), 255)]


def check_selector(selector: str) -> str:
    if not _SELECTOR.fullmatch(selector):
        raise DkimError(
            f"a DKIM selector is DNS labels (letters, digits, '-', '.'), got {selector!r}"
        )
    return selector


class DkimSigner:
    """``signer.sign(data)`` is ``data`` with a DKIM-Signature header in front."""

    def __init__(
        self,
        *,
        domain: str,
        selector: str,
        key: DkimKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domain = domain.encode("idna").decode("ascii").lower()
        self.selector = check_selector(selector)
        self.key = key
        self._clock = clock
        self._policy = CanonicalizationPolicy.from_c_value(CANONICALIZATION)
        self._include = tuple(name.encode("ascii") for name in SIGNED_HEADERS)
        self._fixed = (
            b"v=1; a="
            + key.algorithm.tag
            + b"; c="
            + CANONICALIZATION
            + b"; d="
            + self.domain.encode("ascii")
            + b"; s="
            + selector.encode("ascii")
        )
        self._header_list = b"h=" + b":".join(self._include)

    def sign(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            raise DkimError("a message without a blank line after its headers cannot be signed")
        headers, _ = dkim.rfc822_parse(data[: end + 4])
        if not any(name.lower() == b"from" for name, _ in headers):
            raise DkimError("a message without a From header cannot be DKIM-signed")
        body_hash = base64.b64encode(hashlib.sha256(self.canonical_body(data[end + 4 :])).digest())
        value = (
            b" "
            + self._fixed
            + b"; t="
            + str(int(self._clock())).encode("ascii")
            + b";\r\n\t"
            + self._header_list
            + b";\r\n\tbh="
            + body_hash
            + b";\r\n\tb="
        )
        hasher = hashlib.sha256()
        dkim.hash_headers(
            hasher,
            self._policy,
            self._policy.canonicalize_headers(headers),
            self._include,
            (b"DKIM-Signature", value),
            {},
        )
        signature = base64.b64encode(self.key.sign_digest(hasher.digest()))
        folded = b"\r\n\t".join(
            signature[i : i + _FOLD_AT] for i in range(0, len(signature), _FOLD_AT)
        )
        return b"DKIM-Signature:" + value + folded + b"\r\n" + data

    def canonical_body(self, body: bytes) -> bytes:
        """The relaxed body (RFC 6376 3.4.4), as dkimpy makes it, with plain byte
        replacements instead of its two regular expressions, which cost as much as
        the rest of signing bar the key: every space in a digest is a place where
        they try a match."""
        body = body.replace(b"\t", b" ")
        while b"  " in body:
            body = body.replace(b"  ", b" ")
        # Every run of spaces is one space now, so this drops each run before a line end.
        body = body.replace(b" \r\n", b"\r\n")
        return bytes(correct_empty_body(strip_trailing_lines(body)))
