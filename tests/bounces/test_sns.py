"""SNS messages are believed only when SNS signed them for our topic, recently."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from digest.bounces.sns import (
    MalformedMessage,
    SnsVerifier,
    UntrustedMessage,
    is_signing_cert_url,
    is_sns_url,
)
from tests.sns_signing import CERT_URL, TOPIC_ARN, RecordingFetch, SnsSigner, fixture, sns_time

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner(NOW)


@pytest.fixture
def fetch(signer: SnsSigner) -> RecordingFetch:
    return RecordingFetch({CERT_URL: signer.pem})


@pytest.fixture
def verifier(fetch: RecordingFetch) -> SnsVerifier:
    return SnsVerifier(fetch, topics=[TOPIC_ARN])


def fresh(name: str, **changes: Any) -> dict[str, Any]:
    # The documentation's message, sent now instead of in 2012.
    message = fixture(name)
    message["Timestamp"] = sns_time(NOW)
    message.update(changes)
    return message


def body(message: dict[str, Any]) -> bytes:
    return json.dumps(message, indent=2).encode()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_is_believed(
    signer: SnsSigner, verifier: SnsVerifier, version: str
) -> None:
    message = verifier.verify(
        body(signer.sign(fresh("sns_notification.json"), version=version)), now=NOW
    )

    assert message.type == "Notification"
    assert message.message == "Hello world!"
    assert message.message_id == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert message.topic_arn == TOPIC_ARN


def test_escaped_characters_are_signed_as_they_were_published(
    signer: SnsSigner, verifier: SnsVerifier
) -> None:
    # SNS signs the Message and Subject before escaping them into JSON.
    text = 'line one\nline "two"\ttabbed ü'
    signed = signer.sign(fresh("sns_notification.json", Message=text, Subject="ü\nx"))

    assert verifier.verify(body(signed), now=NOW).message == text


@pytest.mark.parametrize(
    "name", ["sns_subscription_confirmation.json", "sns_unsubscribe_confirmation.json"]
)
def test_confirmations_are_signed_over_their_own_fields(
    signer: SnsSigner, verifier: SnsVerifier, name: str
) -> None:
    message = verifier.verify(body(signer.sign(fresh(name))), now=NOW)

    assert message.subscribe_url == fixture(name)["SubscribeURL"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", "Hello world?"),
        ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
        ("Subject", "My Second Message"),
        ("Type", "SubscriptionConfirmation"),
    ],
)
def test_a_tampered_message_is_refused(
    signer: SnsSigner, verifier: SnsVerifier, field: str, value: str
) -> None:
    signed = signer.sign(fresh("sns_notification.json"))
    signed[field] = value

    with pytest.raises((UntrustedMessage, MalformedMessage)):
        verifier.verify(body(signed), now=NOW)


def test_a_signature_by_another_key_is_refused(verifier: SnsVerifier) -> None:
    impostor = SnsSigner(NOW)

    with pytest.raises(UntrustedMessage, match="signature"):
        verifier.verify(body(impostor.sign(fresh("sns_notification.json"))), now=NOW)


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example/SimpleNotificationService-1.pem",
        "https://s3.amazonaws.com/bucket/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.us-west-2.amazonaws.com/?Action=x&file=SimpleNotificationService-1.pem",
    ],
)
def test_a_certificate_anywhere_but_on_sns_is_never_fetched(
    signer: SnsSigner, verifier: SnsVerifier, fetch: RecordingFetch, url: str
) -> None:
    fetch.answers[url] = signer.pem
    signed = signer.sign(fresh("sns_notification.json", SigningCertURL=url))

    with pytest.raises(UntrustedMessage, match="SigningCertURL"):
        verifier.verify(body(signed), now=NOW)
    assert fetch.calls == []


@pytest.mark.parametrize(
    "url",
    [
        CERT_URL,
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3250158c6506936.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
def test_sns_hosts_of_every_partition_pass(url: str) -> None:
    assert is_signing_cert_url(url)


def test_subscribe_urls_are_sns_urls_too() -> None:
    assert is_sns_url(fixture("sns_subscription_confirmation.json")["SubscribeURL"])
    assert not is_sns_url("https://sns.us-west-2.amazonaws.com.evil.example/?Action=x")


def test_another_topic_is_refused_before_anything_is_fetched(
    signer: SnsSigner, verifier: SnsVerifier, fetch: RecordingFetch
) -> None:
    signed = signer.sign(fresh("sns_notification.json", TopicArn=TOPIC_ARN + "2"))

    with pytest.raises(UntrustedMessage, match="topic"):
        verifier.verify(body(signed), now=NOW)
    assert fetch.calls == []


@pytest.mark.parametrize("sent", [NOW - timedelta(hours=1, minutes=6), NOW + timedelta(minutes=6)])
def test_a_message_older_than_snss_retries_is_a_replay(
    signer: SnsSigner, verifier: SnsVerifier, sent: datetime
) -> None:
    signed = signer.sign(fresh("sns_notification.json", Timestamp=sns_time(sent)))

    with pytest.raises(UntrustedMessage, match="Timestamp"):
        verifier.verify(body(signed), now=NOW)


def test_a_retry_within_the_hour_is_still_believed(
    signer: SnsSigner, verifier: SnsVerifier
) -> None:
    sent = NOW - timedelta(minutes=59)
    signed = signer.sign(fresh("sns_notification.json", Timestamp=sns_time(sent)))

    assert verifier.verify(body(signed), now=NOW).timestamp == sent


def test_the_certificate_is_fetched_once_per_url(
    signer: SnsSigner, verifier: SnsVerifier, fetch: RecordingFetch
) -> None:
    for _ in range(3):
        verifier.verify(body(signer.sign(fresh("sns_notification.json"))), now=NOW)

    assert fetch.calls == [CERT_URL]


def test_an_expired_certificate_is_refused(signer: SnsSigner, verifier: SnsVerifier) -> None:
    later = NOW + timedelta(days=31)
    signed = signer.sign(fresh("sns_notification.json", Timestamp=sns_time(later)))

    with pytest.raises(UntrustedMessage, match="not valid now"):
        verifier.verify(body(signed), now=later)


@pytest.mark.parametrize("version", ["3", ""])
def test_an_unknown_signature_version_is_refused(
    signer: SnsSigner, verifier: SnsVerifier, version: str
) -> None:
    signed = signer.sign(fresh("sns_notification.json"))
    signed["SignatureVersion"] = version

    with pytest.raises(UntrustedMessage, match="SignatureVersion"):
        verifier.verify(body(signed), now=NOW)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        json.dumps({"Type": "Notification"}).encode(),
        json.dumps({**fixture("sns_notification.json"), "Type": "Other"}).encode(),
        b"\xff\xfe",
    ],
)
def test_what_is_no_sns_message_is_malformed(verifier: SnsVerifier, raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        verifier.verify(raw, now=NOW)


def test_confirming_gets_the_subscribe_url_once(
    signer: SnsSigner, verifier: SnsVerifier, fetch: RecordingFetch
) -> None:
    url = fixture("sns_subscription_confirmation.json")["SubscribeURL"]
    fetch.answers[url] = b"<ConfirmSubscriptionResponse/>"
    message = verifier.verify(
        body(signer.sign(fresh("sns_subscription_confirmation.json"))), now=NOW
    )

    verifier.confirm(message)

    assert fetch.calls == [CERT_URL, url]
