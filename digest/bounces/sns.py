"""Amazon SNS messages posted to an HTTPS endpoint: proven to come from SNS, or refused.

SNS signs every message it posts (notification, subscription and unsubscribe
confirmation) with a key whose certificate it names in ``SigningCertURL``. Anyone
can post JSON to the endpoint, so a message is believed only when

- its ``TopicArn`` is one of ours (a topic of someone else's account is signed by
  SNS just as well),
- the certificate URL is https on an SNS host of AWS (``sns.<region>.amazonaws.com``,
  ``….amazonaws.com.cn``) and names a ``.pem``, so that the key comes from Amazon
  and not from whoever wrote the message; the check is AWS's own validators',
- the signature over the documented string to sign is right (SignatureVersion 1:
  SHA1withRSA, 2: SHA256withRSA), and
- it is at most an hour old (SNS gives up retrying an HTTP/S delivery within
  3,600 seconds, a hard limit): an older one is a replay.

Fetching goes through an injected ``Fetch`` (the certificate, and the
SubscribeURL that confirms a subscription); certificates are kept per URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

# GET a URL, return the body; raise FetchError when it cannot.
Fetch = Callable[[str], bytes]

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# The string to sign: these fields, in this (byte) order, each as "name\nvalue\n";
# Subject only when the notification has one.
_SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS[UNSUBSCRIBE_CONFIRMATION] = _SIGNED_FIELDS[SUBSCRIPTION_CONFIRMATION]
_OPTIONAL_FIELDS = frozenset({"Subject"})
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# AWS's validators (PHP's MessageValidator, Node's sns-validator) take this host
# pattern; anything else under amazonaws.com (an S3 bucket) could be anyone's.
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
# SNS retries an HTTP/S delivery for at most 3,600 s; the rest is clock skew.
MAX_AGE = timedelta(hours=1, minutes=5)
MAX_CLOCK_SKEW = timedelta(minutes=5)
# A certificate is ~2 KB; SNS rotates them rarely. Only fetched ones are kept.
_CERTIFICATES_KEPT = 16
# What a certificate or a confirmation's answer may weigh.
FETCH_MAX_BYTES = 64 * 1024


class SnsError(Exception):
    """Why a posted message was not taken, in words for the log (never shown to the
    poster beyond a status)."""


class MalformedMessage(SnsError):
    """Not an SNS message at all: not JSON, a field missing or of the wrong type."""


class UntrustedMessage(SnsError):
    """Shaped like one, but not proven to be SNS's for our topic."""


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    timestamp: datetime
    # A notification's payload (for SES, its JSON); a confirmation's text.
    message: str
    subscribe_url: str | None = None


def is_sns_url(url: str) -> bool:
    """True for https on an SNS host of AWS, nothing else: no other scheme, no user
    part, no port but 443."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and _SNS_HOST.fullmatch(parts.hostname) is not None
        and "@" not in parts.netloc
        and port in (None, 443)
    )


def is_signing_cert_url(url: str) -> bool:
    if not is_sns_url(url):
        return False
    parts = urlsplit(url)
    return parts.path.endswith(".pem") and not parts.query and not parts.fragment


def parse_fields(body: bytes) -> dict[str, str]:
    """The message's fields, strings only (the signed ones must be)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("the body is not a JSON object")
    return {name: value for name, value in document.items() if isinstance(value, str)}


def string_to_sign(fields: dict[str, str]) -> bytes:
    kind = fields.get("Type", "")
    names = _SIGNED_FIELDS.get(kind)
    if names is None:
        raise MalformedMessage(f"unknown message type {kind[:40]!r}")
    lines: list[str] = []
    for name in names:
        if name not in fields:
            if name in _OPTIONAL_FIELDS:
                continue
            raise MalformedMessage(f"a {kind} without {name}")
        lines += (name, fields[name])
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedMessage("Timestamp is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise MalformedMessage("Timestamp has no time zone")
    return moment


def https_fetch(url: str) -> bytes:
    """The production ``Fetch``: one GET, TLS verified, no redirects (a redirect off
    an SNS host would walk past the allow-list), a bounded body."""
    try:
        with (
            httpx.Client(timeout=10.0, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > FETCH_MAX_BYTES:
                    raise FetchError(f"{url}: more than {FETCH_MAX_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc.__class__.__name__}") from exc


class SnsVerifier:
    """``verify(body, now=…)`` is the message when SNS sent it for one of ``topics``."""

    def __init__(self, fetch: Fetch, *, topics: Collection[str]) -> None:
        self._fetch = fetch
        self.topics = frozenset(topics)
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def verify(self, body: bytes, *, now: datetime) -> SnsMessage:
        fields = parse_fields(body)
        signed = string_to_sign(fields)
        for name in ("Signature", "SignatureVersion", "SigningCertURL"):
            if name not in fields:
                raise MalformedMessage(f"no {name}")
        topic = fields["TopicArn"]
        if topic not in self.topics:
            raise UntrustedMessage(f"topic {topic[:200]!r} is not ours")
        algorithm = _HASHES.get(fields["SignatureVersion"])
        if algorithm is None:
            raise UntrustedMessage(
                f"SignatureVersion {fields['SignatureVersion'][:10]!r} is not one we check"
            )
        cert_url = fields["SigningCertURL"]
        if not is_signing_cert_url(cert_url):
            raise UntrustedMessage(f"SigningCertURL {cert_url[:200]!r} is not an SNS certificate")
        timestamp = parse_timestamp(fields["Timestamp"])
        if timestamp < now - MAX_AGE or timestamp > now + MAX_CLOCK_SKEW:
            raise UntrustedMessage(f"Timestamp {fields['Timestamp']!r} is too far from now")
        try:
            signature = base64.b64decode(fields["Signature"], validate=True)
        except binascii.Error:
            raise MalformedMessage("Signature is not base64") from None
        key = self._public_key(cert_url, now)
        try:
            key.verify(signature, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise UntrustedMessage("the signature does not match the message") from None
        return SnsMessage(
            type=fields["Type"],
            message_id=fields["MessageId"],
            topic_arn=topic,
            timestamp=timestamp,
            message=fields["Message"],
            subscribe_url=fields.get("SubscribeURL"),
        )

    def confirm(self, message: SnsMessage) -> None:
        """Confirm a subscription to one of our topics: GET its SubscribeURL (SNS's
        documented way), only when that is an SNS URL. Raises FetchError."""
        url = message.subscribe_url
        if message.type != SUBSCRIPTION_CONFIRMATION or url is None:
            raise ValueError("not a subscription confirmation")
        if not is_sns_url(url):
            raise UntrustedMessage(f"SubscribeURL {url[:200]!r} is not an SNS URL")
        self._fetch(url)
        log.info("confirmed the SNS subscription to %s", message.topic_arn)

    def _public_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        certificate = self._certificates.get(url)
        if certificate is None:
            # A FetchError goes to the caller: answered with a 5xx, SNS retries.
            pem = self._fetch(url)
            try:
                certificate = x509.load_pem_x509_certificate(pem)
            except ValueError:
                raise UntrustedMessage(f"{url[:200]} is not a PEM certificate") from None
            with self._lock:
                if len(self._certificates) >= _CERTIFICATES_KEPT:
                    self._certificates.clear()
                self._certificates[url] = certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise UntrustedMessage(f"the certificate at {url[:200]} is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise UntrustedMessage("the certificate's key is not RSA")
        return key


def message_type_header(value: str | None, message: SnsMessage) -> None:
    """SNS names the type in ``x-amz-sns-message-type`` too; a body that says
    otherwise was not sent as it claims."""
    if value is not None and value != message.type:
        raise MalformedMessage("x-amz-sns-message-type does not match the body's Type")


def notification_json(message: SnsMessage) -> dict[str, Any]:
    """A notification's Message as the JSON object SES publishes."""
    try:
        document = json.loads(message.message)
    except ValueError:
        raise MalformedMessage("the notification's Message is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("the notification's Message is not a JSON object")
    return document
