"""Whatever JSON a provider (or anyone) sends, the parsers answer with events or
their own refusal, never another exception (which the web app would turn into a 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.bounces.postmark import NotAPostmarkRecord, postmark_events
from digest.bounces.ses import NotAnSesNotification, ses_events
from digest.bounces.sns import MalformedMessage, SnsVerifier, UntrustedMessage
from digest.mail.bounces import BounceAddresses
from tests.sns_signing import CERT_URL, TOPIC_ARN, RecordingFetch, SnsSigner, fixture

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
ADDRESSES = BounceAddresses("test-secret-key", "example.org")
FUZZ = settings(max_examples=300, deadline=None)

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def mutated(document: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    """A documented example with some of its values, at any depth, replaced."""

    def walk(value: Any) -> Any:
        if draw(st.integers(0, 9)) == 0:
            return draw(JSON)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if draw(st.integers(0, 12)) != 0}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    result: dict[str, Any] = walk(document)
    return result if isinstance(result, dict) else {}


@st.composite
def ses_notifications(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(
        st.sampled_from(
            [
                "ses_bounce_with_dsn.json",
                "ses_bounce_without_dsn.json",
                "ses_complaint_with_feedback.json",
                "ses_event_bounce.json",
                "ses_event_complaint.json",
            ]
        )
    )
    return mutated(fixture(name), draw)


@st.composite
def postmark_records(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(["postmark_bounce.json", "postmark_spam_complaint.json"]))
    return mutated(fixture(name), draw)


@FUZZ
@given(ses_notifications())
def test_ses_notifications(notification: dict[str, Any]) -> None:
    try:
        events = ses_events(notification, addresses=ADDRESSES, received_at=NOW)
    except NotAnSesNotification:
        return
    for event in events:
        json.dumps(event.raw)
        assert isinstance(event.recipient, str)


@FUZZ
@given(postmark_records())
def test_postmark_records(record: dict[str, Any]) -> None:
    try:
        postmark_events(record, received_at=NOW)
    except NotAPostmarkRecord:
        return


@st.composite
def sns_envelopes(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    """A mutated documentation envelope, and the moment it was sent."""
    name = draw(st.sampled_from(["sns_notification.json", "sns_subscription_confirmation.json"]))
    original = fixture(name)
    return mutated(original, draw), datetime.fromisoformat(original["Timestamp"])


# Its certificate is served at the examples' URL: a mutation that keeps the
# message's shape reaches the signature check, which the placeholders fail.
SIGNER = SnsSigner(datetime(2012, 4, 27, tzinfo=UTC))


@FUZZ
@given(sns_envelopes())
def test_sns_envelopes(envelope_sent: tuple[dict[str, Any], datetime]) -> None:
    envelope, sent = envelope_sent
    verifier = SnsVerifier(RecordingFetch({CERT_URL: SIGNER.pem}), topics=[TOPIC_ARN])
    try:
        verifier.verify(json.dumps(envelope).encode(), now=sent)
    except (MalformedMessage, UntrustedMessage):
        return
    raise AssertionError("an unsigned envelope was believed")
