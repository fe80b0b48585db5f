"""Signing SNS messages as Amazon does, with a key and certificate the tests make.

Only Amazon holds the key behind a real SigningCertURL, so a test makes its own
RSA key and self-signed certificate, signs a documentation-shaped message the way
"Verifying the signatures of Amazon SNS messages" describes (written out here
again, not borrowed from the code under test) and serves the certificate through
the injected fetch at the documented certificate URL: the fetch is the one thing
outside the machine.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from digest.bounces.sns import FetchError
from tests.paths import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "webhooks"
# The documentation's certificate URL and topic, as its examples print them.
CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
TOPIC_ARN = "arn:aws:sns:us-west-2:123456789012:MyTopic"
_SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def sns_time(moment: datetime) -> str:
    """As SNS writes it: "2012-05-02T00:54:06.655Z"."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class SnsSigner:
    def __init__(self, now: datetime) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict[str, Any], *, version: str = "1") -> dict[str, Any]:
        signed = copy.deepcopy(message)
        signed["SignatureVersion"] = version
        text = "".join(
            f"{name}\n{signed[name]}\n" for name in _SIGNED[signed["Type"]] if name in signed
        )
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode("ascii")
        return signed

    def notification(
        self, ses_notification: dict[str, Any], *, now: datetime, version: str = "1"
    ) -> dict[str, Any]:
        """The documentation's SNS notification carrying an SES notification, as SES
        publishes one (no Subject), sent now."""
        envelope = fixture("sns_notification.json")
        del envelope["Subject"]
        envelope["Message"] = json.dumps(ses_notification)
        envelope["Timestamp"] = sns_time(now)
        return self.sign(envelope, version=version)


class RecordingFetch:
    """Answers the URLs it was given and records every GET; anything else fails as
    an unreachable host would."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if url not in self.answers:
            raise FetchError(f"{url}: no such host")
        return self.answers[url]
