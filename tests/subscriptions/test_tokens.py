from __future__ import annotations

import random
import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from digest.subscriptions.tokens import InvalidToken, Purpose, Signer

SECRET = "test-secret-key"
SIGNER = Signer(SECRET)


def test_a_token_round_trips_for_its_purpose() -> None:
    token = SIGNER.sign(Purpose.UNSUBSCRIBE, subscriber_id=42, version=3)
    claims = SIGNER.verify(Purpose.UNSUBSCRIBE, token)
    assert (claims.subscriber_id, claims.version) == (42, 3)


def test_a_token_is_not_valid_for_another_purpose() -> None:
    token = SIGNER.sign(Purpose.UNSUBSCRIBE, subscriber_id=42, version=1)
    with pytest.raises(InvalidToken):
        SIGNER.verify(Purpose.PREFERENCES, token)


@pytest.mark.parametrize("tamper", [lambda t: t[:-2] + "xx", lambda t: "A" + t[1:], lambda t: ""])
def test_a_tampered_token_is_rejected(tamper: object) -> None:
    token = SIGNER.sign(Purpose.UNSUBSCRIBE, subscriber_id=42, version=1)
    with pytest.raises(InvalidToken, match="not valid"):
        SIGNER.verify(Purpose.UNSUBSCRIBE, tamper(token))  # type: ignore[operator]


def test_a_token_signed_with_another_secret_is_rejected() -> None:
    token = Signer("another-secret").sign(Purpose.UNSUBSCRIBE, subscriber_id=42, version=1)
    with pytest.raises(InvalidToken):
        SIGNER.verify(Purpose.UNSUBSCRIBE, token)


def test_a_confirmation_link_expires_after_48_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    token = SIGNER.sign(Purpose.CONFIRM, subscriber_id=42, version=1)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 49 * 3600)
    with pytest.raises(InvalidToken, match="expired"):
        SIGNER.verify(Purpose.CONFIRM, token)
    # Unsubscribe links outlive any email a reader may still act on.
    unsubscribe = SIGNER.sign(Purpose.UNSUBSCRIBE, subscriber_id=42, version=1)
    monkeypatch.setattr(time, "time", lambda: now + 49 * 3600 + 90 * 86400)
    assert SIGNER.verify(Purpose.UNSUBSCRIBE, unsubscribe).subscriber_id == 42


# Signed on main, before signing was made fast: links in readers' inboxes look like these.
SIGNED_ON_MAIN = [
    (Purpose.UNSUBSCRIBE, (42, 3), "WzQyLDNd.a0nSAA.4Ux3ea5DW42lSdHOB4p5OM7zbFA"),
    (Purpose.FEEDBACK, (42, 3, 1234567), "WzQyLDMsMTIzNDU2N10.a0nSAA.P7iAAUo9ASvQPhu7XrtNPkOjRh0"),
    # Repetitive enough for zlib to shorten it: itsdangerous sends it compressed.
    (
        Purpose.FEEDBACK,
        (1111111111111, 1, 1111111111111),
        ".eJyLNkQGOkCIDGIBY7EGPA.a0nSAA.W8m3seCPO4BVxu3bKYYYYq7gE4Q",
    ),
]
SIGNED_AT = 1_800_000_000


def sign(purpose: Purpose, claims: tuple[int, ...]) -> str:
    return SIGNER.sign(
        purpose,
        subscriber_id=claims[0],
        version=claims[1],
        nonce=claims[2] if len(claims) == 3 else None,
    )


@pytest.mark.parametrize(("purpose", "claims", "token"), SIGNED_ON_MAIN)
def test_tokens_are_the_bytes_they_were_and_old_ones_verify(
    purpose: Purpose, claims: tuple[int, ...], token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: SIGNED_AT + 0.5)
    assert sign(purpose, claims) == token
    verified = SIGNER.verify(purpose, token)
    assert (verified.subscriber_id, verified.version, verified.nonce) == (
        *claims[:2],
        claims[2] if len(claims) == 3 else None,
    )


def test_tokens_equal_itsdangerous_dumps_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: SIGNED_AT + 0.5)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: SIGNED_AT)
    rng = random.Random(12)
    compressed = 0
    for _ in range(3000):
        digits = [rng.randint(1, 19) for _ in range(rng.choice((2, 3)))]
        if rng.random() < 0.3:
            # Runs of one digit, which zlib can shorten.
            claims = tuple(int(rng.choice("123456789") * d) for d in digits)
        else:
            claims = tuple(rng.randrange(10**d) for d in digits)
        purpose = rng.choice(list(Purpose))
        expected = URLSafeTimedSerializer(SECRET, salt=f"digest.{purpose.value}").dumps(
            list(claims)
        )
        assert sign(purpose, claims) == expected
        compressed += expected.startswith(".")
    # Both of itsdangerous's payload forms were compared.
    assert 100 < compressed < 2900
