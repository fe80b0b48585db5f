"""Signed, purpose-bound links for subscribers.

A token carries the subscriber id and their token version. Each link kind signs
with its own salt, so an unsubscribe token is not a valid preferences token, and
bumping ``Subscriber.token_version`` revokes every link issued before.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


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


# How long a link stays valid: unsubscribe links must outlive any old email a
# reader may still act on.
MAX_AGE_SECONDS = {
    Purpose.UNSUBSCRIBE: 365 * 24 * 3600,
    Purpose.PREFERENCES: 365 * 24 * 3600,
    Purpose.CONFIRM: 48 * 3600,
    Purpose.CHANGE_EMAIL: 48 * 3600,
    Purpose.FORM: 12 * 3600,
    Purpose.FEEDBACK: 365 * 24 * 3600,
}


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

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret_key, salt=f"digest.{purpose.value}")

    def sign(
        self, purpose: Purpose, *, subscriber_id: int, version: int, nonce: int | None = None
    ) -> str:
        claims = [subscriber_id, version] if nonce is None else [subscriber_id, version, nonce]
        token: str = self._serializer(purpose).dumps(claims)
        return token

    def verify(self, purpose: Purpose, token: str) -> TokenClaims:
        try:
            payload = self._serializer(purpose).loads(token, max_age=MAX_AGE_SECONDS[purpose])
        except SignatureExpired as exc:
            raise InvalidToken("this link has expired") from exc
        except BadSignature as exc:
            raise InvalidToken("this link is not valid") from exc
        if (
            not isinstance(payload, list)
            or len(payload) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        ):
            raise InvalidToken("this link is not valid")
        return TokenClaims(*payload)
