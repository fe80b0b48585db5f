"""The mail viewer of ``digest serve`` (``/mailbox``), through the ASGI app, with mail
from a real SMTP exchange: what the sink received is listed, shown and followed;
no id reaches a file outside the sink's folder; the production app has no such page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from digest.mail.mailbox import Mailbox
from digest.mail.sink import SmtpSink
from digest.web.app import create_app
from digest.web.routes.mailbox import EMAIL_POLICY

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def viewer(web_settings: Settings, smtp_sink: SmtpSink) -> Iterator[TestClient]:
    app = create_app(web_settings, mailbox=Mailbox(smtp_sink.directory))
    with TestClient(app, follow_redirects=False) as client:
        yield client


def subscribe(client: TestClient, email: str) -> None:
    answer = client.post("/", data={"email": email, "frequency": "daily"})
    assert answer.status_code == 200 and "Check your inbox" in answer.text


def listed_ids(client: TestClient) -> list[str]:
    page = client.get("/mailbox")
    assert page.status_code == 200
    return re.findall(r'href="/mailbox/([0-9-]+)"', page.text)


def test_received_emails_are_listed_newest_first_with_time_to_and_subject(
    viewer: TestClient, smtp_sink: SmtpSink
) -> None:
    assert "No email yet" in viewer.get("/mailbox").text
    subscribe(viewer, "first@example.org")
    subscribe(viewer, "second@example.org")

    page = viewer.get("/mailbox").text
    ids = listed_ids(viewer)
    assert ids == sorted((p.stem for p in smtp_sink.files()), reverse=True) and len(ids) == 2
    assert page.index("second@example.org") < page.index("first@example.org")
    assert page.count("Confirm your digest subscription") == 2
    assert re.search(r"<time datetime=\"20\d\d-\d\d-\d\dT", page)


def test_the_confirmation_is_shown_framed_and_its_confirm_link_works(
    viewer: TestClient, database_engine: object
) -> None:
    subscribe(viewer, "framed.reader@example.org")
    (message_id,) = listed_ids(viewer)

    page = viewer.get(f"/mailbox/{message_id}")
    assert page.status_code == 200
    assert "framed.reader@example.org" in page.text
    assert "Confirm your digest subscription" in page.text
    frame = re.search(r"<iframe [^>]*>", page.text)
    assert frame, page.text
    assert f'src="/mailbox/{message_id}/html"' in frame.group(0)
    sandbox = re.search(r'sandbox="([^"]*)"', frame.group(0))
    assert sandbox and "allow-scripts" not in sandbox.group(1)
    assert "allow-same-origin" not in sandbox.group(1)
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    html = viewer.get(f"/mailbox/{message_id}/html")
    assert html.status_code == 200
    assert html.headers["content-security-policy"] == EMAIL_POLICY
    assert "script-src" not in EMAIL_POLICY and "sandbox" in EMAIL_POLICY
    assert html.headers["x-frame-options"] == "SAMEORIGIN"
    # The site's own pages refuse frames: the email's links open outside it.
    assert '<base target="_blank">' in html.text
    confirm = re.search(r'href="https://digest\.example\.org(/confirm/[^"]+)"', html.text)
    assert confirm, html.text

    form = viewer.get(confirm.group(1))
    assert form.status_code == 200 and "Confirm your subscription" in form.text
    done = viewer.post(confirm.group(1))
    assert done.status_code == 200 and "You are subscribed" in done.text


def test_the_text_part_and_the_source_are_a_link_away(viewer: TestClient) -> None:
    subscribe(viewer, "text.reader@example.org")
    (message_id,) = listed_ids(viewer)
    page = viewer.get(f"/mailbox/{message_id}").text
    assert f'href="/mailbox/{message_id}?part=text"' in page
    assert f'href="/mailbox/{message_id}?part=raw"' in page

    text = viewer.get(f"/mailbox/{message_id}", params={"part": "text"}).text
    assert "<iframe" not in text, text
    assert "https://digest.example.org/confirm/" in text
    raw = viewer.get(f"/mailbox/{message_id}", params={"part": "raw"}).text
    assert "Return-Path: &lt;bounces+n" in raw and "Content-Type: multipart/alternative" in raw
    assert viewer.get(f"/mailbox/{message_id}", params={"part": "other"}).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/mailbox/..%2Foutside",
        "/mailbox/..%2Foutside/html",
        "/mailbox/%2E%2E%2Foutside",
        "/mailbox/..%2F..%2Fetc%2Fpasswd",
        "/mailbox/..%2Fhtml",
        "/mailbox/..%2F..%2Fhtml/html",
        "/mailbox/%2Fetc%2Fpasswd",
        "/mailbox/secret",
        "/mailbox/secret/html",
        "/mailbox/1-1.eml",
        "/mailbox/1-1%00",
        "/mailbox/99999999999999999999-1",
    ],
)
def test_an_id_names_only_an_eml_file_of_the_sink(
    viewer: TestClient, smtp_sink: SmtpSink, tmp_path: Path, path: str
) -> None:
    # Files an id could be turned towards: beside the folder, inside it, and the ones
    # the sink's own name pattern would match if the suffix were not fixed.
    email = "Subject: not listed\r\nContent-Type: text/html\r\n\r\n<p>HIDDEN-9c2e</p>"
    (tmp_path / "outside.eml").write_text(email)
    (smtp_sink.directory / "secret").write_text("SECRET-7f3a")
    (smtp_sink.directory / "secret.eml").write_text(email)
    (smtp_sink.directory / "1-1.eml.eml").write_text(email)
    answer = viewer.get(path)
    assert answer.status_code == 404
    assert "SECRET-7f3a" not in answer.text and "HIDDEN-9c2e" not in answer.text
    assert "not listed" not in viewer.get("/mailbox").text


def test_the_production_app_has_no_mailbox(
    make_settings: Callable[..., Settings], database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(database_url=database_url, smtp_url=smtp_sink.url)
    with TestClient(create_app(settings)) as client:
        subscribe(client, "production.reader@example.org")
        (message_id,) = [path.stem for path in smtp_sink.files()]
        for path in ("/mailbox", f"/mailbox/{message_id}", f"/mailbox/{message_id}/html"):
            assert client.get(path).status_code == 404
        # Its pages keep the site's policy: no frames at all.
        assert client.get("/").headers["x-frame-options"] == "DENY"
