"""DKIM: every email verifies with dkimpy against the key `digest dkim keygen` wrote.

DNS is answered by the test: the TXT record keygen printed, at the name it printed.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from config.settings import Settings
from digest.cli.main import cli
from digest.delivery.ledger import Outcome, claim_due_deliveries
from digest.mail.dkim import Algorithm, DkimError, DkimKey, DkimSigner, generate_key
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError
from digest.mail.signing import SigningSender
from digest.mail.sink import SmtpSink
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.subscribers import Notice
from tests.factories import NOW, make_paper, make_subscriber, make_subscriber_for_notice

DOMAIN = "example.org"
SELECTOR = "digest2026"
Dns = Callable[..., bytes | None]


def keygen(directory: Path, algorithm: str) -> tuple[Path, Dns]:
    """Run `digest dkim keygen`; the key file it wrote and a resolver serving its record."""
    result = CliRunner().invoke(
        cli,
        [
            "dkim",
            "keygen",
            "--domain",
            DOMAIN,
            "--selector",
            SELECTOR,
            "--out",
            str(directory),
            "--algorithm",
            algorithm,
        ],
    )
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if " IN TXT " in line]
    name, _, _, strings = line.split(" ", 3)
    # A TXT record's strings are joined, as a resolver joins them.
    record = "".join(re.findall(r'"([^"]*)"', strings)).encode("ascii")
    path = Path(re.search(r"DIGEST_DKIM_PRIVATE_KEY_FILE=(\S+)", result.output).group(1))  # type: ignore[union-attr]

    def dns(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query.decode("ascii") == name else None

    return path, dns


def signature_tags(raw: bytes) -> dict[bytes, bytes]:
    match = re.search(rb"^DKIM-Signature:(.*?)\r?\n(?=\S)", raw, re.MULTILINE | re.DOTALL)
    assert match is not None, "no DKIM-Signature header"
    tags: dict[bytes, bytes] = parse_tag_value(re.sub(rb"\s+", b"", match.group(1)))
    return tags


@pytest.fixture(params=["rsa", "ed25519"])
def dkim_key(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Dns]:
    return keygen(tmp_path / "keys", request.param)


def signing_settings(key_file: Path, **values: object) -> dict[str, object]:
    return {
        "dkim_domain": DOMAIN,
        "dkim_selector": SELECTOR,
        "dkim_private_key_file": key_file,
        **values,
    }


def test_keygen_writes_a_key_only_its_owner_reads_and_prints_the_record(tmp_path: Path) -> None:
    path, dns = keygen(tmp_path, "rsa")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = dns(f"{SELECTOR}._domainkey.{DOMAIN}.".encode())
    assert record is not None and record.startswith(b"v=DKIM1; k=rsa; p=")
    key = DkimKey.read(path)
    assert record.decode() == key.dns_value()
    # A second keygen for the same selector never overwrites the published key.
    again = CliRunner().invoke(
        cli, ["dkim", "keygen", "--domain", DOMAIN, "--selector", SELECTOR, "--out", str(tmp_path)]
    )
    assert again.exit_code == 1 and "exists" in again.output
    assert DkimKey.read(path).dns_value() == key.dns_value()


def test_a_digest_is_signed_over_its_unsubscribe_headers_and_verifies(
    session: Session,
    make_runtime: Callable[..., Runtime],
    smtp_sink: SmtpSink,
    dkim_key: tuple[Path, Dns],
) -> None:
    key_file, dns = dkim_key
    make_paper(session, upvotes=12)
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    runtime = make_runtime(**signing_settings(key_file, smtp_url=smtp_sink.url))

    runtime.rank_batch([delivery_id], now=NOW)
    assert runtime.mail_batch([delivery_id], now=NOW).outcomes == {delivery_id: Outcome.SENT}

    [raw] = [path.read_bytes() for path in smtp_sink.files()]
    assert dkim.verify(raw, dnsfunc=dns)
    tags = signature_tags(raw)
    assert tags[b"d"] == DOMAIN.encode() and tags[b"s"] == SELECTOR.encode()
    signed = tags[b"h"].split(b":")
    for header in (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    ):
        assert header in signed
    # Oversigned: nobody can add a second From or List-Unsubscribe on the way.
    assert signed.count(b"from") == 2 and signed.count(b"list-unsubscribe") == 2
    # What the signature is for: changed on the way, it no longer verifies.
    assert not dkim.verify(
        raw.replace(b"List-Unsubscribe: <", b"List-Unsubscribe: <x"), dnsfunc=dns
    )
    assert not dkim.verify(re.sub(rb"Subject: ", b"Subject: Re: ", raw, count=1), dnsfunc=dns)


@pytest.mark.parametrize("notice", list(Notice))
def test_every_notice_is_signed_and_verifies(
    session: Session,
    make_runtime: Callable[..., Runtime],
    smtp_sink: SmtpSink,
    dkim_key: tuple[Path, Dns],
    notice: Notice,
) -> None:
    key_file, dns = dkim_key
    runtime = make_runtime(**signing_settings(key_file, smtp_url=smtp_sink.url))
    reader = make_subscriber_for_notice(session, notice)

    assert runtime.send_notice(notice, reader.id, now=NOW)

    [raw] = [path.read_bytes() for path in smtp_sink.files()]
    assert dkim.verify(raw, dnsfunc=dns)


def test_without_a_key_mail_goes_out_unsigned(
    session: Session, make_runtime: Callable[..., Runtime], smtp_sink: SmtpSink
) -> None:
    runtime = make_runtime(smtp_url=smtp_sink.url)
    reader = make_subscriber(session, status=SubscriberStatus.PENDING, confirmed_at=None)
    assert runtime.send_notice(Notice.CONFIRM, reader.id, now=NOW)
    [raw] = [path.read_bytes() for path in smtp_sink.files()]
    assert b"DKIM-Signature" not in raw


def test_a_broken_or_missing_key_stops_the_sender_saying_why(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DkimError, match=r"broken\.pem"):
        _ = Runtime(make_settings(**signing_settings(broken))).sender
    with pytest.raises(DkimError, match="cannot read"):
        _ = Runtime(make_settings(**signing_settings(tmp_path / "absent.pem"))).sender


def test_half_a_dkim_configuration_is_refused(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="DIGEST_DKIM_SELECTOR"):
        make_settings(dkim_domain=DOMAIN, dkim_private_key_file=tmp_path / "key.pem")


def test_a_message_that_cannot_be_signed_fails_alone_and_is_never_sent_unsigned(
    smtp_sink: SmtpSink, dkim_key: tuple[Path, Dns]
) -> None:
    key_file, dns = dkim_key
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=DkimKey.read(key_file))
    sender = SigningSender(SmtpSender(SmtpConfig.from_url(smtp_sink.url)), signer)
    body = b"Subject: hi\r\nTo: a@example.net\r\n\r\nhello\r\n"
    messages = [
        OutgoingMessage("b@example.org", "a@example.net", "<1@example.org>", body),
        OutgoingMessage(
            "b@example.org", "a@example.net", "<2@example.org>", b"From: b@example.org\r\n" + body
        ),
    ]
    outcomes: dict[str, SendError | None] = {}

    sender.send_many(
        messages, lambda message, error: outcomes.__setitem__(message.message_id, error)
    )

    failed = outcomes["<1@example.org>"]
    assert failed is not None and failed.permanent and "From" in str(failed)
    assert outcomes["<2@example.org>"] is None
    [raw] = [path.read_bytes() for path in smtp_sink.files()]
    assert dkim.verify(raw, dnsfunc=dns)


def test_signed_ahead_every_message_is_reported_and_a_composing_error_comes_after_them(
    smtp_sink: SmtpSink, dkim_key: tuple[Path, Dns]
) -> None:
    key_file, dns = dkim_key
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=DkimKey.read(key_file))
    sender = SigningSender(SmtpSender(SmtpConfig.from_url(smtp_sink.url, connections=3)), signer)
    reported: list[str] = []

    def messages(count: int, then_fail: bool) -> Iterator[OutgoingMessage]:
        for n in range(count):
            data = f"From: b@example.org\r\nTo: a@example.net\r\nSubject: {n}\r\n\r\nhi\r\n"
            yield OutgoingMessage("b@example.org", "a@example.net", f"<{n}@x>", data.encode())
        if then_fail:
            raise RuntimeError("composing the next one failed")

    def on_result(message: OutgoingMessage, error: SendError | None) -> None:
        assert error is None
        reported.append(message.message_id)

    sender.send_many(messages(25, then_fail=False), on_result)
    assert sorted(reported) == sorted(f"<{n}@x>" for n in range(25))
    reported.clear()
    with pytest.raises(RuntimeError, match="composing the next one failed"):
        sender.send_many(messages(4, then_fail=True), on_result)
    # What was composed before the error still went out and was reported.
    assert sorted(reported) == sorted(f"<{n}@x>" for n in range(4))
    raws = [path.read_bytes() for path in smtp_sink.files()]
    assert len(raws) == 29 and all(dkim.verify(raw, dnsfunc=dns) for raw in raws)


@pytest.mark.parametrize(
    "body",
    [
        b"line one\r\nline two\r\n",
        b"line one\r\nline two\r\n\r\n\r\n",
        b"no line end at the end",
        b"trailing space \r\n\tand a tab\r\nruns   of  spaces\r\n\r\n",
        b"=E2=96=B2 142 =C2=B7 +38 today=\r\n soft break\r\n",
        b"\r\n\r\n",
        b"",
        b"a bare\nline feed\r\nand a bare\rcarriage return\r\n",
        b"  \t \t  \r\n \r\n\t\r\nx \r \n  \r\n",
    ],
)
def test_the_relaxed_body_is_dkimpys_whatever_the_body_holds(body: bytes) -> None:
    assert_relaxed_as_dkimpy(body)


@given(st.binary(max_size=200).map(lambda b: bytes(b" \t\r\nab"[x % 6] for x in b)))
def test_the_relaxed_body_is_dkimpys_for_any_mix_of_spaces_tabs_and_line_ends(body: bytes) -> None:
    assert_relaxed_as_dkimpy(body)


def assert_relaxed_as_dkimpy(body: bytes) -> None:
    signer = DkimSigner(
        domain=DOMAIN,
        selector=SELECTOR,
        key=generate_key(Algorithm.ED25519),
    )
    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    assert signer.canonical_body(body) == relaxed.canonicalize_body(body)
