"""The subscriber pages against someone who holds a link, forges one, or posts from
another site: each test is an attack that once worked (issue 15)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from tests.web.readers import csrf, make_reader, preferences_path, subscriber, unsubscribe_path


def test_a_deleted_readers_links_never_open_the_next_readers_subscription(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    gone = make_reader(database_engine, email="gone@example.org")
    preferences = preferences_path(web_settings, gone)
    unsubscribe = unsubscribe_path(web_settings, gone)
    deleted = client.post(
        f"{preferences}/delete", data={"csrf": csrf(client.get(f"{preferences}/delete").text)}
    )
    assert deleted.status_code == 200
    # SQLite gives the next reader the deleted one's id; the same id on PostgreSQL
    # stands for a restored or merged database.
    make_reader(database_engine, id=gone.id, email="newperson@example.org")

    page = client.get(preferences)
    assert page.status_code in (400, 404) and "newperson" not in page.text
    data = client.get(f"{preferences}/data.json")
    assert data.status_code in (400, 404) and "newperson" not in data.text
    one_click = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code in (400, 404)
    newcomer = subscriber(database_engine, "newperson@example.org")
    assert newcomer is not None and newcomer.status == SubscriberStatus.ACTIVE


def test_a_used_confirmation_link_hands_out_nothing(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(
        database_engine, email="forwarded@example.org", status=SubscriberStatus.PENDING
    )
    confirm = Runtime(web_settings).links.confirm(reader).removeprefix(web_settings.base_url)
    assert "You are subscribed" in client.post(confirm).text

    # Whoever the confirmation email was forwarded to, opening or posting it again.
    for again in (client.get(confirm), client.post(confirm)):
        assert again.status_code == 200 and "This link was already used" in again.text
        assert "/preferences/" not in again.text and "/unsubscribe/" not in again.text
        assert "forwarded@example.org" not in again.text
        assert 'href="/"' in again.text
