from __future__ import annotations

import time

import pytest

from digest.subscriptions.tokens import InvalidToken, Purpose, Signer

SIGNER = Signer("test-secret-key")


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
