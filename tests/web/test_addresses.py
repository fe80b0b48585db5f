"""Internationalised addresses on the subscribe form: taken when mail can reach them,
refused with a reason when it cannot."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from digest.mail.sink import SmtpSink
from digest.web.app import create_app
from tests.web.readers import csrf, make_reader, preferences_path, subscriber


def test_an_international_address_subscribes_and_gets_its_confirmation(
    client: TestClient, smtp_sink: SmtpSink, database_engine: Engine
) -> None:
    answer = client.post("/", data={"email": "Jörg@Bücher.example", "frequency": "daily"})

    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert subscriber(database_engine, "jörg@bücher.example") is not None
    [confirmation] = smtp_sink.messages()
    # The domain in IDNA, the local part in UTF-8 over SMTPUTF8 (RFC 6531, 6532).
    assert confirmation["To"] == "jörg@xn--bcher-kva.example"
    assert "Confirm" in confirmation["Subject"]


def test_without_smtputf8_the_form_says_the_address_cannot_be_used(
    make_settings: Callable[..., Settings],
    database_url: str,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    settings = make_settings(database_url=database_url, smtp_url=smtp_sink.url, smtp_utf8=False)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        refused = client.post("/", data={"email": "jörg@example.org", "frequency": "daily"})
        # A domain beyond ASCII has its IDNA form: any server takes it.
        taken = client.post("/", data={"email": "leser@bücher.example", "frequency": "daily"})

    assert refused.status_code == 400
    assert "our mail server cannot send to such addresses" in refused.text
    assert 'value="jörg@example.org"' in refused.text
    assert subscriber(database_engine, "jörg@example.org") is None
    assert taken.status_code == 200 and "Check your inbox" in taken.text
    assert [m["To"] for m in smtp_sink.messages()] == ["leser@xn--bcher-kva.example"]


def test_without_smtputf8_the_change_address_form_says_the_new_one_cannot_be_used(
    make_settings: Callable[..., Settings],
    database_url: str,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    settings = make_settings(database_url=database_url, smtp_url=smtp_sink.url, smtp_utf8=False)
    reader = make_reader(database_engine, email="reader@example.org")
    path = preferences_path(settings, reader)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        form = csrf(client.get(path).text)
        refused = client.post(f"{path}/email", data={"csrf": form, "new_email": "jörg@example.org"})

    assert refused.status_code == 400
    assert "our mail server cannot send to such addresses" in refused.text
    assert subscriber(database_engine, "reader@example.org").pending_email is None  # type: ignore[union-attr]
    assert smtp_sink.messages() == []
