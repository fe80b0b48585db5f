"""Signed, purpose-bound links for subscribers.

A token carries the subscriber id and their token version. Each link kind signs
with its own salt, so an unsubscribe token is not a valid preferences token, and
bumping ``Subscriber.token_version`` revokes every link issued before.
"""

from __future__ import annotations

import binascii
import enum
import hmac
import time
import zlib
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes
from itsdangerous.signer import HMACAlgorithm


class Purpose(enum.StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"
    # Confirms a new address: the link goes to that address, not the current one.
    CHANGE_EMAIL = "change-email"
    # Proves a form was served by us to the holder of a preferences link.
    FORM = "form"
    # "More / fewer like this" on one paper of a digest; the paper id is signed in.
    FEEDBACK = "feedback"
    # One digest as a web page ("View in browser"); the delivery id is signed in.
    VIEW = "view"
    # The reader's private Atom feed of their digests.
    FEED = "feed"


# How long a link stays valid: unsubscribe links must outlive any old email a
# reader may still act on.
MAX_AGE_SECONDS = {
    Purpose.UNSUBSCRIBE: 365 * 24 * 3600,
    Purpose.PREFERENCES: 365 * 24 * 3600,
    Purpose.CONFIRM: 48 * 3600,
    Purpose.CHANGE_EMAIL: 48 * 3600,
    Purpose.FORM: 12 * 3600,
    Purpose.FEEDBACK: 365 * 24 * 3600,
    Purpose.VIEW: 365 * 24 * 3600,
    # A feed reader keeps its URL for years; "sign out all my links" revokes it.
    Purpose.FEED: 10 * 365 * 24 * 3600,
}


# Ids, versions and nonces are database integers: a signed 10**30 (forgeable by whoever
# holds the key) made the database driver raise instead of the link being refused.
_LARGEST_ID = 2**63 - 1


class InvalidToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    subscriber_id: int
    version: int
    # Single-use links carry the subscriber's nonce of the moment they were sent;
    # feedback links carry the paper id in this place.
    nonce: int | None = None

    @property
    def paper_id(self) -> int | None:
        return self.nonce


class Signer:
    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key
        self._minters: dict[Purpose, _Minter] = {}

    def _minter(self, purpose: Purpose) -> _Minter:
        minter = self._minters.get(purpose)
        if minter is None:
            serializer = URLSafeTimedSerializer(self._secret_key, salt=f"digest.{purpose.value}")
            minter = self._minters[purpose] = _Minter(serializer)
        return minter

    def sign(
        self, purpose: Purpose, *, subscriber_id: int, version: int, nonce: int | None = None
    ) -> str:
        claims = (subscriber_id, version) if nonce is None else (subscriber_id, version, nonce)
        return self._minter(purpose).sign(claims, int(time.time()))

    def verify(self, purpose: Purpose, token: str) -> TokenClaims:
        serializer = self._minter(purpose).serializer
        try:
            payload = serializer.loads(token, max_age=MAX_AGE_SECONDS[purpose])
        except SignatureExpired as exc:
            raise InvalidToken("this link has expired") from exc
        except BadSignature as exc:
            raise InvalidToken("this link is not valid") from exc
        if (
            not isinstance(payload, list)
            or len(payload) not in (2, 3)
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _LARGEST_ID
                for v in payload
            )
        ):
            raise InvalidToken("this link is not valid")
        return TokenClaims(*payload)


class _Minter:
    """Signs one purpose's tokens byte for byte as ``URLSafeTimedSerializer.dumps`` does.

    ``dumps`` builds a new signer, derives its key and runs ``zlib.compress`` for every
    token; the zlib call alone (it allocates its full state) cost most of a digest's link
    signing. Links already in inboxes must keep verifying, so the format is untouched:
    only the key is derived once and the compression decision made cheaply.
    """

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        self.serializer = serializer
        signer = serializer.make_signer()
        if not isinstance(signer.algorithm, HMACAlgorithm) or signer.sep != b".":
            raise TypeError("tokens are HMAC-signed with '.' separators")
        self._key = signer.derive_key()
        # By name ("sha1"), hmac.digest takes OpenSSL's one-shot path.
        self._digest = signer.algorithm.digest_method().name
        self._timestamp = (-1, b"")

    def sign(self, claims: tuple[int, ...], timestamp: int) -> str:
        # The compact JSON itsdangerous writes for a list of ints.
        payload = (b"[%d,%d]" if len(claims) == 2 else b"[%d,%d,%d]") % claims
        compressed = zlib.compress(payload) if _may_compress(payload) else b""
        if compressed and len(compressed) < len(payload) - 1:
            payload = b"." + _base64(compressed)
        else:
            payload = _base64(payload)
        if self._timestamp[0] != timestamp:
            self._timestamp = (timestamp, _base64(int_to_bytes(timestamp)))
        value = payload + b"." + self._timestamp[1]
        signature = hmac.digest(self._key, value, self._digest)
        return (value + b"." + _base64(signature)).decode("ascii")


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _base64(data: bytes) -> bytes:
    """itsdangerous's base64_encode: URL-safe alphabet, no padding."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URL_SAFE)


# Below this length, a payload without a repeated 3-byte sequence gives deflate nothing to
# match, and literals alone never come out shorter than they went in (they start paying
# off around 48 bytes; tests/subscriptions/test_tokens.py compares with zlib).
_LITERAL_ONLY_BELOW = 32
# The probe's window (512 bytes less zlib's 262 of lookahead) must span the whole payload.
_PROBE_UP_TO = 200


def _may_compress(payload: bytes) -> bool:
    """False when zlib cannot make ``payload`` 2 bytes shorter, which is when itsdangerous
    sends it compressed; True when it may, and only ``zlib.compress`` can tell."""
    size = len(payload)
    if size > _PROBE_UP_TO:
        return True
    if (
        size < _LITERAL_ONLY_BELOW
        and len({payload[i : i + 3] for i in range(size - 2)}) == size - 2
    ):
        return False
    # A 512-byte window and the smallest hash table allocate a few kB, not zlib.compress's
    # quarter megabyte, and find the same matches in a payload this short: same length.
    probe = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 9, 1)
    return len(probe.compress(payload) + probe.flush()) < size - 1
