"""The one-click unsubscribe on PostgreSQL: the async UPDATE and the shortcut in
front of the app's routes (digest.web.one_click), against the real server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg import AsyncConnection
from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send

from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import unsubscribe_by_link_async
from digest.subscriptions.tokens import Purpose, Signer
from digest.web.one_click import OneClickShortcut, OneClickUnsubscriber
from digest.web.security_headers import SECURITY_HEADERS
from tests.factories import NOW
from tests.web.readers import make_reader

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# The shortcut runs on PostgreSQL only (SQLite keeps the route's thread-pool path).
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def stored(database_engine: Engine, subscriber_id: int) -> Subscriber:
    with unit_of_work(make_session_factory(database_engine)) as session:
        subscriber = session.get_one(Subscriber, subscriber_id)
        session.expunge(subscriber)
        return subscriber


def link(web_settings: Settings, subscriber: Subscriber) -> str:
    token = Signer(web_settings.secret_key).sign(
        Purpose.UNSUBSCRIBE, subscriber_id=subscriber.id, version=subscriber.token_version
    )
    return f"/unsubscribe/{token}"


def one_click_requests(client: TestClient) -> int:
    """How many one-click UPDATEs the async pool has run for this app."""
    unsubscriber: OneClickUnsubscriber = client.app.state.one_click  # type: ignore[attr-defined]
    return int(unsubscriber.pool.get_stats().get("requests_num", 0))


def test_the_async_update_unsubscribes_only_the_holder_of_the_link_and_keeps_the_first_time(
    database_engine: Engine, database_url: str
) -> None:
    holder = make_reader(database_engine)
    other = make_reader(database_engine)
    _, options = database_engine.dialect.create_connect_args(database_engine.url)
    options.pop("context", None)

    async def unsubscribe(version: int, when: timedelta) -> bool:
        async with await AsyncConnection.connect(**options, autocommit=True) as connection:
            return await unsubscribe_by_link_async(connection, holder.id, version, now=NOW + when)

    assert not asyncio.run(unsubscribe(holder.token_version + 1, timedelta(0)))
    assert stored(database_engine, holder.id).status == SubscriberStatus.ACTIVE

    assert asyncio.run(unsubscribe(holder.token_version, timedelta(0)))
    assert asyncio.run(unsubscribe(holder.token_version, timedelta(hours=1)))
    after = stored(database_engine, holder.id)
    assert after.status == SubscriberStatus.UNSUBSCRIBED
    assert after.unsubscribed_at == NOW
    assert stored(database_engine, other.id).status == SubscriberStatus.ACTIVE


def test_a_one_click_post_is_answered_by_the_shortcut_and_unsubscribes(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    subscriber = make_reader(database_engine)
    before = one_click_requests(client)
    response = client.post(
        link(web_settings, subscriber), content=b"List-Unsubscribe=One-Click", headers=FORM
    )
    assert response.status_code == 200
    assert response.text == "You have been unsubscribed."
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert one_click_requests(client) == before + 1
    assert stored(database_engine, subscriber.id).status == SubscriberStatus.UNSUBSCRIBED


def test_a_one_click_with_a_tampered_link_still_gets_the_page_that_says_why(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    subscriber = make_reader(database_engine)
    response = client.post(
        link(web_settings, subscriber) + "x", content=b"List-Unsubscribe=One-Click", headers=FORM
    )
    assert response.status_code == 400
    assert "We could not use this link" in response.text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert stored(database_engine, subscriber.id).status == SubscriberStatus.ACTIVE


def test_a_one_click_of_a_revoked_link_goes_on_to_the_app(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    revoked = make_reader(database_engine)
    old_link = link(web_settings, revoked)
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.get_one(Subscriber, revoked.id).token_version += 1
    response = client.post(old_link, content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert response.status_code == 400
    assert "We could not use this link" in response.text
    assert stored(database_engine, revoked.id).status == SubscriberStatus.ACTIVE


def test_a_body_read_in_part_by_the_shortcut_reaches_the_app_whole(database_engine: Engine) -> None:
    # The one-click field first, then more: the shortcut reads past the one-click
    # body, gives up, and the app must still receive every chunk.
    chunks = [b"List-Unsubscribe=One-Click", b"&padding=" + b"x" * 10_000, b"&last=1"]
    expected = b"".join(chunks)
    received: list[bytes] = []

    async def receive() -> Message:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        more_body = True
        while more_body:
            message = await receive()
            received.append(message.get("body", b""))
            more_body = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    shortcut = OneClickShortcut(
        app,
        # Never opened: the shortcut must not reach the database for this body.
        unsubscriber=OneClickUnsubscriber(database_engine, connections=1),
        signer=Signer("test-secret-key"),
    )
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/unsubscribe/some-token",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    asyncio.run(shortcut(scope, receive, send))
    assert b"".join(received) == expected
    assert sent[0]["status"] == 204


def test_the_unsubscribe_button_is_not_a_one_click(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    subscriber = make_reader(database_engine)
    before = one_click_requests(client)
    response = client.post(link(web_settings, subscriber), data={"csrf": "from the page"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert one_click_requests(client) == before
    assert stored(database_engine, subscriber.id).status == SubscriberStatus.UNSUBSCRIBED
