"""Digests on the web: "View in browser", the reader's private feed, the public day."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from config.settings import Settings
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.subscriptions.models import Subscriber
from digest.web.app import create_app
from tests.cli.commands import lexical_ranking_file
from tests.factories import NOW, make_paper, make_subscriber
from tests.web.readers import csrf, preferences_path


@pytest.fixture
def web_settings(
    make_settings: Callable[..., Settings], database_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> Settings:
    return make_settings(
        database_url=database_url,
        smtp_url=smtp_sink.url,
        ranking_file=lexical_ranking_file(tmp_path),
    )


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings), follow_redirects=False) as client:
        yield client


@dataclass
class Mailed:
    runtime: Runtime
    reader: Subscriber
    delivery_id: int
    titles: list[str]


def mail_a_digest(settings: Settings, **reader: object) -> Mailed:
    """A reader's digest ranked and mailed as delivery runs it."""
    runtime = Runtime(settings)
    with unit_of_work(runtime.session_factory) as session:
        for upvotes in (40, 30, 20, 10):
            make_paper(session, upvotes=upvotes)
        subscriber = make_subscriber(session, send_hour=0, papers_per_digest=2, **reader)
        claimed = claim_due_deliveries(session, now=NOW)
        session.expunge(subscriber)
    runtime.send_batch(claimed, now=NOW)
    with unit_of_work(runtime.session_factory) as session:
        delivery = session.scalars(
            select(Delivery).where(Delivery.subscriber_id == subscriber.id)
        ).one()
        assert delivery.status == DeliveryStatus.SENT
        titles = [placed.paper.shown_title for placed in delivery.papers]
        mailed = Mailed(runtime, subscriber, delivery.id, titles)
    runtime.dispose()
    return mailed


def test_view_in_browser_shows_the_digest_as_it_was_mailed_to_its_reader_alone(
    client: TestClient, web_settings: Settings, smtp_sink: SmtpSink, database_engine: Engine
) -> None:
    mailed = mail_a_digest(web_settings)
    link = mailed.runtime.links.view(mailed.reader, mailed.delivery_id)

    page = client.get(link.removeprefix(web_settings.base_url))

    assert page.status_code == 200 and page.headers["X-Robots-Tag"] == "noindex, nofollow"
    emailed = [m for m in smtp_sink.messages() if m["To"] == mailed.reader.email][-1]
    html = emailed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for title in mailed.titles:
        assert title in page.text and title in html
    # Someone else's link cannot open this digest, whatever delivery id it names.
    other = mail_a_digest(web_settings)
    foreign = other.runtime.links.view(other.reader, mailed.delivery_id)
    assert client.get(foreign.removeprefix(web_settings.base_url)).status_code == 404
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert client.get(tampered.removeprefix(web_settings.base_url)).status_code in (400, 404)


def test_a_readers_private_feed_holds_their_digests_and_dies_with_their_links(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    mailed = mail_a_digest(web_settings)
    preferences = preferences_path(web_settings, mailed.reader)
    page = client.get(preferences)
    # Read off the page, as the reader copies it (a token carries the time it was signed).
    found = re.search(r'value="(https://digest\.example\.org/feeds/[^"]+)"', page.text)
    assert found is not None, "the preferences page shows the private feed"
    feed_url = found.group(1)

    answer = client.get(feed_url.removeprefix(web_settings.base_url))

    assert answer.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(answer.content)
    assert not feed.bozo, feed.bozo_exception
    [entry] = feed.entries
    assert entry.title.startswith(f"{mailed.titles[0]} + 1 more · ")
    assert entry.link == mailed.runtime.links.view(mailed.reader, mailed.delivery_id)
    assert all(title in html.unescape(entry.content[0].value) for title in mailed.titles), (
        mailed.titles,
        answer.text.count("Paper number"),
        entry.content[0].value.count("Paper"),
        len(entry.content[0].value),
    )
    assert entry.id.startswith("tag:") and "/feeds/" not in entry.id
    # "Sign out all my links" changes the feed's address too.
    signed_out = client.post(f"{preferences}/sign-out", data={"csrf": csrf(page.text)})
    assert signed_out.status_code == 200
    assert client.get(feed_url.removeprefix(web_settings.base_url)).status_code in (400, 404)


def test_the_days_trending_papers_are_public_as_a_page_and_a_feed_with_nobodys_data(
    client: TestClient, web_settings: Settings
) -> None:
    mailed = mail_a_digest(web_settings, email="private-reader@example.org")

    page = client.get("/trending")
    feed = feedparser.parse(client.get("/trending.atom").content)

    assert page.status_code == 200 and "Trending papers" in page.text
    assert not feed.bozo, feed.bozo_exception
    titles = [entry.title for entry in feed.entries]
    # The day's top ten, each in the feed and on the page.
    assert 0 < len(titles) <= 10 and all(title in page.text for title in titles)
    assert page.text.count("<li>") == len(titles)
    for public in (page.text, str(feed)):
        assert "private-reader" not in public and "/preferences/" not in public
    day = NOW.date().isoformat()
    assert client.get(f"/trending/{day}").status_code in (200, 404)
    assert client.get("/trending/2026-13-45").status_code == 404
    assert client.get("/trending/1999-01-01").status_code == 404
    assert mailed.titles


def test_every_digest_opens_in_the_browser_from_its_own_link(
    client: TestClient, web_settings: Settings, smtp_sink: SmtpSink
) -> None:
    mailed = mail_a_digest(web_settings)
    emailed = [m for m in smtp_sink.messages() if m["To"] == mailed.reader.email][-1]
    links = {}
    for subtype in ("html", "plain"):
        part = emailed.get_body((subtype,)).get_content()  # type: ignore[union-attr]
        found = re.search(r"https://digest\.example\.org/digests/[A-Za-z0-9._-]+", part)
        assert found is not None, f"no View in browser link in the {subtype} part"
        links[subtype] = found.group(0)
    assert "View in browser" in emailed.get_body(("html",)).get_content()  # type: ignore[union-attr]

    page = client.get(links["html"].removeprefix(web_settings.base_url))

    assert page.status_code == 200
    assert all(title in page.text for title in mailed.titles)
