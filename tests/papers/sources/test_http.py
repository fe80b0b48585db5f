"""The polite fetcher every remote source goes through."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from digest.papers.sources import SourceError
from digest.papers.sources.http import USER_AGENT, HttpStatusError
from tests.papers.sources.recorded import Recorded

URL = "https://feeds.example.org/papers.xml"


def answers(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)
    return lambda request: queue.pop(0)


def test_it_says_who_it_is(serve: Callable[..., Recorded]) -> None:
    recorded = serve(answers(httpx.Response(200, content=b"<rss/>")))
    recorded.fetcher.get(URL)
    assert recorded.requests[0].headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("digest/")


def test_a_429_waits_as_long_as_retry_after_says(serve: Callable[..., Recorded]) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    recorded = serve(
        answers(
            httpx.Response(429, headers={"Retry-After": "12"}),
            httpx.Response(503, headers={"Retry-After": later}),
            httpx.Response(200, content=b"ok"),
        )
    )
    response = recorded.fetcher.get(URL)
    assert response is not None and response.body == b"ok"
    assert recorded.clock.sleeps[0] == 12
    assert 25 < recorded.clock.sleeps[1] <= 30


def test_a_retry_after_that_is_not_a_number_falls_back_to_backoff(
    serve: Callable[..., Recorded],
) -> None:
    # Header values arrive as latin-1: "\xb2" is "²", which isdigit() accepts and int() refuses.
    recorded = serve(
        answers(
            httpx.Response(503, headers={b"Retry-After": b"\xb2", b"Content-Length": b"\xb2"}),
            httpx.Response(200, content=b"ok"),
        )
    )
    response = recorded.fetcher.get(URL)
    assert response is not None and response.body == b"ok"
    assert len(recorded.clock.sleeps) == 1


def test_a_server_asking_for_hours_is_given_up_on(serve: Callable[..., Recorded]) -> None:
    recorded = serve(answers(httpx.Response(503, headers={"Retry-After": "86400"})))
    with pytest.raises(SourceError, match="asked to wait 86400s"):
        recorded.fetcher.get(URL)
    assert recorded.clock.sleeps == []


def test_transport_errors_are_retried_with_backoff_then_reported(
    serve: Callable[..., Recorded],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    recorded = serve(refuse, max_retries=3, backoff_seconds=2.0)
    with pytest.raises(SourceError, match="cannot fetch"):
        recorded.fetcher.get(URL)
    assert recorded.clock.sleeps == [2.0, 4.0, 8.0]
    assert len(recorded.requests) == 4


def test_a_client_error_is_not_retried(serve: Callable[..., Recorded]) -> None:
    recorded = serve(answers(httpx.Response(403, content=b"forbidden")))
    with pytest.raises(HttpStatusError) as raised:
        recorded.fetcher.get(URL)
    assert (raised.value.status, raised.value.body) == (403, b"forbidden")
    assert len(recorded.requests) == 1


def test_conditional_get_sends_what_the_server_said_last_time(
    serve: Callable[..., Recorded],
) -> None:
    recorded = serve(
        answers(
            httpx.Response(
                200,
                content=b"v1",
                headers={"ETag": '"abc"', "Last-Modified": "Mon, 23 Nov 2026 06:00:00 GMT"},
            ),
            httpx.Response(304),
        )
    )
    assert recorded.fetcher.get(URL) is not None
    assert recorded.fetcher.get(URL) is None
    second = recorded.requests[1].headers
    assert second["if-none-match"] == '"abc"'
    assert second["if-modified-since"] == "Mon, 23 Nov 2026 06:00:00 GMT"


def test_hosts_are_not_asked_more_often_than_their_interval(
    serve: Callable[..., Recorded],
) -> None:
    recorded = serve(
        answers(*(httpx.Response(200, content=b"x") for _ in range(3))),
        min_interval={"export.arxiv.org": 3.0},
    )
    for start in (0, 100, 200):
        recorded.fetcher.get("https://export.arxiv.org/api/query", params={"start": start})
    assert recorded.clock.sleeps == [3.0, 3.0]


def test_an_oversized_response_is_refused_without_reading_it_all(
    serve: Callable[..., Recorded],
) -> None:
    declared = serve(answers(httpx.Response(200, content=b"x" * 2048)), max_bytes=1024)
    with pytest.raises(SourceError, match="over the 1,024"):
        declared.fetcher.get(URL)

    chunks_sent: list[int] = []

    def endless() -> Iterator[bytes]:
        # No Content-Length: the limit is enforced while streaming.
        for n in range(1000):
            chunks_sent.append(n)
            yield b"y" * 512

    streamed = serve(answers(httpx.Response(200, content=endless())), max_bytes=4096)
    with pytest.raises(SourceError, match="over the 4,096-byte limit"):
        streamed.fetcher.get(URL)
    assert len(chunks_sent) < 20


def test_a_file_url_is_read_and_then_not_modified_until_it_changes(
    serve: Callable[..., Recorded], tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss>1</rss>")
    fetcher = serve(answers()).fetcher
    url = feed.as_uri()

    first = fetcher.get(url)
    assert first is not None and first.body == b"<rss>1</rss>"
    assert fetcher.get(url) is None
    feed.write_bytes(b"<rss>two</rss>")
    changed = fetcher.get(url)
    assert changed is not None and changed.body == b"<rss>two</rss>"

    with pytest.raises(SourceError, match="cannot read"):
        fetcher.get((tmp_path / "missing.xml").as_uri())


def test_the_same_body_again_is_not_modified_even_without_validators(
    serve: Callable[..., Recorded],
) -> None:
    # Many feeds send neither ETag nor Last-Modified; re-parsing identical bytes
    # would only find that nothing changed.
    recorded = serve(
        answers(
            httpx.Response(200, content=b"<rss>1</rss>"),
            httpx.Response(200, content=b"<rss>1</rss>"),
            httpx.Response(200, content=b"<rss>2</rss>"),
        )
    )
    assert recorded.fetcher.get(URL) is not None
    assert recorded.fetcher.get(URL) is None
    changed = recorded.fetcher.get(URL)
    assert changed is not None and changed.body == b"<rss>2</rss>"


def test_an_unconditional_fetch_always_answers_and_remembers_nothing(
    serve: Callable[..., Recorded],
) -> None:
    same = httpx.Response(200, content=b"<feed/>", headers={"ETag": '"x"'})
    recorded = serve(answers(same, httpx.Response(200, content=b"<feed/>")))
    assert recorded.fetcher.get(URL, conditional=False) is not None
    assert recorded.fetcher.get(URL, conditional=False) is not None
    assert "if-none-match" not in recorded.requests[1].headers
    assert recorded.fetcher.validators == {}


def test_a_touched_file_with_the_same_bytes_is_not_modified(
    serve: Callable[..., Recorded], tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss>1</rss>")
    fetcher = serve(answers()).fetcher
    assert fetcher.get(feed.as_uri()) is not None
    os.utime(feed, ns=(1, 1))
    assert fetcher.get(feed.as_uri()) is None
