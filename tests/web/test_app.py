from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import Purpose, Signer
from digest.web.app import create_app
from digest.web.security_headers import SECURITY_HEADERS
from tests.factories import make_subscriber


@pytest.fixture
def reader(database_engine: Engine) -> Subscriber:
    with unit_of_work(make_session_factory(database_engine)) as session:
        return make_subscriber(session)


def status_of(database_engine: Engine, subscriber_id: int) -> SubscriberStatus:
    with unit_of_work(make_session_factory(database_engine)) as session:
        return session.get_one(Subscriber, subscriber_id).status


def token_for(settings: Settings, reader: Subscriber, version: int | None = None) -> str:
    return Signer(settings.secret_key).sign(
        Purpose.UNSUBSCRIBE, subscriber_id=reader.id, version=version or reader.token_version
    )


def test_health_reports_the_database(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_opening_the_unsubscribe_link_changes_nothing(
    client: TestClient, web_settings: Settings, reader: Subscriber, database_engine: Engine
) -> None:
    response = client.get(f"/unsubscribe/{token_for(web_settings, reader)}")
    assert response.status_code == 200
    assert reader.email in response.text and "<button" in response.text
    assert status_of(database_engine, reader.id) == SubscriberStatus.ACTIVE


def test_the_unsubscribe_button_unsubscribes(
    client: TestClient, web_settings: Settings, reader: Subscriber, database_engine: Engine
) -> None:
    response = client.post(f"/unsubscribe/{token_for(web_settings, reader)}")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert status_of(database_engine, reader.id) == SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rfc8058_one_click_post_unsubscribes_without_redirect(
    client: TestClient,
    web_settings: Settings,
    reader: Subscriber,
    database_engine: Engine,
    encoding: str,
) -> None:
    url = f"/unsubscribe/{token_for(web_settings, reader)}"
    if encoding == "urlencoded":
        # Exactly what Gmail sends: no cookies, this one form field.
        response = client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert status_of(database_engine, reader.id) == SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "WzEsMV0.awGugQ.PUuc9Bo3mfhLVzDh7hAT2Uiuajo"],
)
def test_a_bad_link_gets_a_clear_page_not_an_error(client: TestClient, token: str) -> None:
    for response in (client.get(f"/unsubscribe/{token}"), client.post(f"/unsubscribe/{token}")):
        assert response.status_code == 400
        assert "We could not use this link" in response.text


def test_revoked_links_stop_working(
    client: TestClient, web_settings: Settings, reader: Subscriber, database_engine: Engine
) -> None:
    old = token_for(web_settings, reader)
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.get_one(Subscriber, reader.id).token_version += 1
    assert client.post(f"/unsubscribe/{old}").status_code == 400
    assert status_of(database_engine, reader.id) == SubscriberStatus.ACTIVE


def test_pages_forbid_framing_and_foreign_content(client: TestClient) -> None:
    response = client.get("/unsubscribe/not-a-token")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_a_server_error_carries_the_security_headers_too(
    web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(statement: str) -> None:
        raise RuntimeError("a bug in a route")

    # Any unexpected exception in a route: here, the health check's query.
    monkeypatch.setattr("digest.web.routes.health.text", bug)
    with TestClient(create_app(web_settings), raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 500
    assert "a bug in a route" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_https_sites_ask_browsers_to_stay_on_https_and_pages_want_no_device_features(
    web_settings: Settings,
) -> None:
    http = web_settings.model_copy(update={"base_url": "http://127.0.0.1:8000"})
    with TestClient(create_app(http)) as local:
        plain = local.get("/health")
    assert "Strict-Transport-Security" not in plain.headers
    assert "camera=()" in plain.headers["Permissions-Policy"]
    https = web_settings.model_copy(update={"base_url": "https://papers.example.org"})
    with TestClient(create_app(https)) as secure:
        answer = secure.get("/health")
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_method_a_page_does_not_take_says_which_it_does(client: TestClient) -> None:
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    # The subscribe page's GET and POST are two routes: Starlette named only the first.
    response = client.put("/")
    assert response.status_code == 405
    assert {"GET", "POST"} <= set(response.headers["Allow"].replace(" ", "").split(","))


def test_web_templates_exist(web_settings: Settings) -> None:
    assert (Path(web_settings.templates_dir) / "web" / "unsubscribe.html").exists()
