""" "More like this" / "fewer like this" from a digest: the links in the email, the
page they open, what a click records, and how the next digest changes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from config.ranking import load_ranking_config
from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import Outcome
from digest.delivery.models import Delivery
from digest.mail.sink import SmtpSink
from digest.papers.models import Paper, PopularitySignal
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from digest.subscriptions.feedback import feedback_of, record_feedback, withdraw_feedback
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber
from digest.subscriptions.tokens import Purpose, Signer
from tests.factories import make_paper
from tests.web.readers import csrf, make_reader, preferences_path, unsubscribe_path

FEEDBACK_URL = re.compile(r"https://digest\.example\.org(/feedback/[\w.-]+\?kind=(?:more|fewer))")


def add_paper(database_engine: Engine, *, upvotes: int | None = None, **fields: Any) -> Paper:
    """A paper, with its upvotes as a source reported them when it first appeared."""
    with unit_of_work(make_session_factory(database_engine)) as session:
        paper = make_paper(session, **fields)
        if upvotes is not None:
            session.add(
                PopularitySignal(
                    paper_id=paper.id,
                    source="hf",
                    observed_at=paper.first_seen_at,
                    upvotes=upvotes,
                )
            )
        session.expunge(paper)
        return paper


def feedback_path(settings: Settings, reader: Subscriber, paper: Paper, kind: str) -> str:
    return Runtime(settings).links.feedback(reader, paper.id, kind).removeprefix(settings.base_url)


def recorded(database_engine: Engine, reader: Subscriber) -> dict[int, FeedbackKind]:
    with unit_of_work(make_session_factory(database_engine)) as session:
        rows = session.execute(
            select(Feedback.paper_id, Feedback.kind).where(Feedback.subscriber_id == reader.id)
        )
        return {paper_id: kind for paper_id, kind in rows}


def form_of(html: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's form, as a browser would post them."""
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action, "the page has no form"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    return action.group(1), fields


def press(client: TestClient, html: str) -> Any:
    action, fields = form_of(html)
    return client.post(action, data=fields)


def ask(
    client: TestClient,
    settings: Settings,
    reader: Subscriber,
    paper: Paper,
    kind: str,
) -> Any:
    """Open the feedback link as a digest has it and press the page's button."""
    done = press(client, client.get(feedback_path(settings, reader, paper, kind)).text)
    assert done.status_code == 200
    return done


# -- the page ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["more", "fewer"])
def test_opening_a_feedback_link_records_nothing(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    kind: str,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine, title="Graph networks for weather")
    # Mail scanners follow every link in a message, some more than once.
    for _ in range(2):
        page = client.get(feedback_path(web_settings, reader, paper, kind))
        assert page.status_code == 200
    assert f"{kind.capitalize()} papers like this?" in page.text
    assert "Graph networks for weather" in page.text and reader.email in page.text
    assert f'<button type="submit">{kind.capitalize()} like this</button>' in page.text
    assert recorded(database_engine, reader) == {}


def test_the_button_records_the_wish_and_the_page_says_so(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine, title="Diffusion for video")

    done = ask(client, web_settings, reader, paper, "more")

    assert done.status_code == 200
    assert "You will see more like this" in done.text and "Diffusion for video" in done.text
    assert "<title>More like this · digest</title>" in done.text
    assert recorded(database_engine, reader) == {paper.id: FeedbackKind.MORE}
    # Posting the same wish again keeps one row.
    ask(client, web_settings, reader, paper, "more")
    assert recorded(database_engine, reader) == {paper.id: FeedbackKind.MORE}


def test_the_other_button_replaces_the_first_choice(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    other = add_paper(database_engine)
    ask(client, web_settings, reader, other, "more")
    ask(client, web_settings, reader, paper, "more")

    fewer = ask(client, web_settings, reader, paper, "fewer")

    assert "You will see fewer like this" in fewer.text
    assert recorded(database_engine, reader) == {
        paper.id: FeedbackKind.FEWER,
        other.id: FeedbackKind.MORE,
    }


def test_undo_withdraws_the_feedback(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    done = ask(client, web_settings, reader, paper, "fewer")
    assert recorded(database_engine, reader) == {paper.id: FeedbackKind.FEWER}

    undone = press(client, done.text)  # the page's Undo button

    assert undone.status_code == 200 and "Feedback withdrawn" in undone.text
    assert "<title>Feedback withdrawn · digest</title>" in undone.text
    assert "no longer changes your digests" in undone.text
    assert "Undo" not in undone.text
    assert recorded(database_engine, reader) == {}
    # Undo twice (a second tab) is harmless.
    assert client.post(form_of(done.text)[0], data={"kind": "clear"}).status_code == 200


@pytest.mark.parametrize("kind", ["", "MORE", "lots", "clear "])
def test_a_post_with_an_unknown_choice_changes_nothing(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    kind: str,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    ask(client, web_settings, reader, paper, "more")
    path = feedback_path(web_settings, reader, paper, "more").split("?")[0]

    answer = client.post(path, data={"kind": kind} if kind else {})

    assert answer.status_code == 400 and "Unknown choice" in answer.text
    assert recorded(database_engine, reader) == {paper.id: FeedbackKind.MORE}


def test_an_unknown_kind_in_the_link_shows_the_more_page(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    path = feedback_path(web_settings, reader, paper, "more").split("?")[0]
    page = client.get(f"{path}?kind=<script>")
    assert page.status_code == 200 and "More papers like this?" in page.text
    assert "<script>" not in page.text


# -- links that cannot be used -----------------------------------------------------


def assert_invalid(answer: Any) -> None:
    assert answer.status_code == 400
    assert "We could not use this link" in answer.text


def test_a_tampered_link_is_refused(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    path, query = feedback_path(web_settings, reader, paper, "more").split("?")
    token = path.rsplit("/", 1)[1]
    # Signed with someone else's key.
    forged = Signer("not-our-secret").sign(
        Purpose.FEEDBACK, subscriber_id=reader.id, version=0, nonce=paper.id
    )
    # This link's signature on another paper's claims (the id edited by hand).
    other_claims = Signer(web_settings.secret_key).sign(
        Purpose.FEEDBACK, subscriber_id=reader.id, version=0, nonce=paper.id + 1
    )
    edited = other_claims.split(".")[0] + token[token.index(".") :]
    # Ours, but naming no paper.
    no_paper = Signer(web_settings.secret_key).sign(
        Purpose.FEEDBACK, subscriber_id=reader.id, version=0
    )
    for bad in (forged, edited, "nonsense", no_paper):
        assert_invalid(client.get(f"/feedback/{bad}?{query}"))
        assert_invalid(client.post(f"/feedback/{bad}", data={"kind": "more"}))
    assert recorded(database_engine, reader) == {}


def test_a_link_for_another_purpose_is_refused(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    add_paper(database_engine)
    for path in (unsubscribe_path(web_settings, reader), preferences_path(web_settings, reader)):
        token = path.rsplit("/", 1)[1]
        assert_invalid(client.get(f"/feedback/{token}?kind=more"))
        assert_invalid(client.post(f"/feedback/{token}", data={"kind": "more"}))
    assert recorded(database_engine, reader) == {}


def test_a_feedback_link_opens_nothing_else(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    token = feedback_path(web_settings, reader, paper, "more").split("?")[0].rsplit("/", 1)[1]
    assert_invalid(client.get(f"/preferences/{token}"))
    assert_invalid(client.post(f"/unsubscribe/{token}"))


def test_a_link_to_a_deleted_paper_says_the_paper_is_gone(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    path = feedback_path(web_settings, reader, paper, "more")
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.delete(session.get_one(Paper, paper.id))

    for answer in (client.get(path), client.post(path.split("?")[0], data={"kind": "more"})):
        assert answer.status_code == 404
        assert "This paper is no longer here" in answer.text
        # The subscription itself is fine: the page must not say it was deleted.
        assert "subscription no longer exists" not in answer.text
        assert "/preferences/" in answer.text
    assert recorded(database_engine, reader) == {}


def test_a_link_of_an_erased_subscriber_says_the_subscription_is_gone(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    path = feedback_path(web_settings, reader, paper, "more")
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.delete(session.get_one(Subscriber, reader.id))

    for answer in (client.get(path), client.post(path.split("?")[0], data={"kind": "more"})):
        assert answer.status_code == 404 and "no longer exists" in answer.text


def test_bumping_the_token_version_revokes_feedback_links(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    path = feedback_path(web_settings, reader, paper, "more")
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.get_one(Subscriber, reader.id).token_version += 1

    assert_invalid(client.get(path))
    assert_invalid(client.post(path.split("?")[0], data={"kind": "more"}))
    assert recorded(database_engine, reader) == {}


# -- personal data -----------------------------------------------------------------


def test_download_my_data_lists_the_feedback_and_delete_me_removes_it(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    liked = add_paper(database_engine, title="Liked paper")
    disliked = add_paper(database_engine, title="Disliked paper")
    ask(client, web_settings, reader, liked, "more")
    ask(client, web_settings, reader, disliked, "fewer")
    path = preferences_path(web_settings, reader)

    data = json.loads(client.get(f"{path}/data.json").text)

    assert sorted((f["kind"], f["title"], f["url"]) for f in data["feedback"]) == [
        ("fewer", "Disliked paper", disliked.url),
        ("more", "Liked paper", liked.url),
    ]
    assert all(datetime.fromisoformat(f["at"]).tzinfo is not None for f in data["feedback"])

    deleted = client.post(f"{path}/delete", data={"csrf": csrf(client.get(f"{path}/delete").text)})
    assert deleted.status_code == 200 and "Your data is deleted" in deleted.text
    with unit_of_work(make_session_factory(database_engine)) as session:
        left = select(func.count()).where(Feedback.subscriber_id == reader.id)
        assert session.scalar(left) == 0
        # The papers stay: they belong to everyone's digests.
        assert session.get(Paper, liked.id) is not None


# -- end to end: the digest, the click, the next digest ------------------------------

# Later than every other test's papers, so that these are the only candidates.
MONDAY = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
TUESDAY = MONDAY + timedelta(days=1)


def lexical_ranker() -> TrendingRanker:
    # No model: what is asserted does not depend on an embedding's judgement.
    return TrendingRanker(window=timedelta(days=2), config=load_ranking_config(), embedder=None)


SendDigest = Callable[[Subscriber, datetime], tuple[list[int], EmailMessage]]


@pytest.fixture
def send_digest(
    web_settings: Settings,
    database_engine: Engine,
    smtp_sink: SmtpSink,
) -> SendDigest:
    """Send the reader's digest of ``now`` through the SMTP sink: the papers it holds
    (in order) and the message as received."""

    def send(reader: Subscriber, now: datetime) -> tuple[list[int], EmailMessage]:
        already = len(smtp_sink.messages())
        with unit_of_work(make_session_factory(database_engine)) as session:
            delivery = Delivery(
                subscriber_id=reader.id, edition=now.date().isoformat(), created_at=now
            )
            session.add(delivery)
            session.flush()
        runtime = Runtime(web_settings)
        runtime.__dict__["ranker"] = lexical_ranker()
        try:
            result = runtime.send_batch([delivery.id], now=now)
        finally:
            runtime.dispose()
        assert result.outcomes == {delivery.id: Outcome.SENT}
        with unit_of_work(make_session_factory(database_engine)) as session:
            delivery = session.get_one(Delivery, delivery.id)
            sent = [p.paper_id for p in sorted(delivery.papers, key=lambda p: p.position)]
        messages = smtp_sink.messages()
        assert len(messages) == already + 1
        return sent, messages[-1]

    return send


def feedback_links(message: EmailMessage, part: str) -> list[str]:
    body = message.get_body(preferencelist=(part,))
    assert body is not None
    return [str(p) for p in FEEDBACK_URL.findall(body.get_content())]


def test_more_like_this_from_a_digest_changes_the_next_digest(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    send_digest: SendDigest,
) -> None:
    reader = make_reader(database_engine, papers_per_digest=2)
    control = make_reader(database_engine, papers_per_digest=1)
    graph = add_paper(
        database_engine,
        title="Graph neural networks for molecules",
        abstract="Message passing graph networks predict molecule properties.",
        first_seen_at=MONDAY - timedelta(hours=3),
        upvotes=5,
    )
    robots = add_paper(
        database_engine,
        title="Robot arms that learn to grasp",
        abstract="Robot arms learn to grasp cups from demonstrations.",
        first_seen_at=MONDAY - timedelta(hours=3),
        upvotes=200,
    )

    sent, message = send_digest(reader, MONDAY)

    assert sent == [robots.id, graph.id]
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    for part in (html.get_content(), text.get_content()):
        assert part.count("More like this") == 2 and part.count("Fewer like this") == 2
    in_html, in_text = feedback_links(message, "html"), feedback_links(message, "plain")
    assert len(in_html) == 4 and sorted(in_html) == sorted(in_text)
    assert [p.endswith("?kind=more") for p in in_text] == [True, False, True, False]

    # The reader asks for more like the graph paper: open the link, press the button.
    more_graph = in_text[2]
    page = client.get(more_graph)
    assert "Graph neural networks for molecules" in page.text
    assert "You will see more like this" in press(client, page.text).text
    assert recorded(database_engine, reader) == {graph.id: FeedbackKind.MORE}

    similar = add_paper(
        database_engine,
        title="Equivariant graph networks for molecule generation",
        abstract="Graph message passing generates molecules.",
        first_seen_at=TUESDAY - timedelta(hours=2),
        upvotes=2,
    )
    popular = add_paper(
        database_engine,
        title="Large language models write poems",
        abstract="Language models generate rhyming verse.",
        first_seen_at=TUESDAY - timedelta(hours=2),
        upvotes=300,
    )

    sent_tuesday, _ = send_digest(reader, TUESDAY)
    control_tuesday, _ = send_digest(control, TUESDAY)

    # Without feedback the most upvoted paper leads; with it, the graph paper does.
    assert control_tuesday == [popular.id]
    assert sent_tuesday[0] == similar.id
    assert graph.id not in sent_tuesday and robots.id not in sent_tuesday  # already sent


def test_fewer_like_this_from_a_digest_keeps_the_paper_out_of_the_next_one(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    send_digest: SendDigest,
) -> None:
    later = MONDAY + timedelta(days=30)
    reader = make_reader(database_engine, papers_per_digest=1)
    loud = add_paper(
        database_engine, title="Prompt tuning for chat models", first_seen_at=later, upvotes=90
    )
    quiet = add_paper(database_engine, title="Weather forecasting", first_seen_at=later, upvotes=10)
    ask(client, web_settings, reader, loud, "fewer")

    sent, message = send_digest(reader, later + timedelta(hours=1))

    assert sent == [quiet.id]
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "Prompt tuning" not in text.get_content()


def test_fewer_like_this_lowers_close_papers_for_a_reader_without_interests(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    send_digest: SendDigest,
) -> None:
    day = MONDAY + timedelta(days=60)
    reader = make_reader(database_engine, papers_per_digest=1)
    chat = add_paper(
        database_engine,
        title="Prompt tuning for chat models",
        abstract="Prompt tuning adapts chat models.",
        first_seen_at=day,
        upvotes=90,
    )
    close = add_paper(
        database_engine,
        title="Prompt tuning for chat assistants",
        abstract="Prompt tuning adapts chat assistants.",
        first_seen_at=day,
        upvotes=80,
    )
    weather = add_paper(
        database_engine,
        title="Weather forecasting with transformers",
        abstract="Forecasts of rain and wind.",
        first_seen_at=day,
        upvotes=70,
    )
    assert send_digest(reader, day + timedelta(hours=1))[0] == [chat.id]

    # The page promises: "Later digests rank papers close to this one lower."
    ask(client, web_settings, reader, chat, "fewer")

    next_day = send_digest(reader, day + timedelta(days=1))[0]
    assert next_day == [weather.id], f"{close.id} is the paper close to the one refused"


def test_more_like_this_keeps_a_full_digest_for_a_reader_without_interests(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    send_digest: SendDigest,
) -> None:
    day = MONDAY + timedelta(days=90)
    reader = make_reader(database_engine, papers_per_digest=3)
    liked = add_paper(
        database_engine,
        title="Graph neural networks for molecules",
        abstract="Message passing graph networks predict molecule properties.",
        first_seen_at=day - timedelta(days=10),
    )
    ask(client, web_settings, reader, liked, "more")
    close = add_paper(
        database_engine,
        title="Equivariant graph networks for molecule generation",
        abstract="Graph message passing generates molecules.",
        first_seen_at=day,
        upvotes=2,
    )
    others = [
        add_paper(
            database_engine, title=title, abstract=abstract, first_seen_at=day, upvotes=upvotes
        )
        for title, abstract, upvotes in (
            ("Large language models write poems", "Language models rhyme.", 300),
            ("Weather forecasting with transformers", "Forecasts of rain.", 100),
        )
    ]

    sent, _ = send_digest(reader, day + timedelta(hours=1))

    # More like the graph paper first, then what is trending: still three papers.
    assert sent[0] == close.id
    assert sorted(sent[1:]) == sorted(p.id for p in others)


def test_feedback_read_back_in_the_same_unit_of_work_is_the_latest_choice(
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    first = add_paper(database_engine)
    second = add_paper(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        subscriber = session.get_one(Subscriber, reader.id)

        def listed() -> list[tuple[int, FeedbackKind]]:
            return [(p.id, f.kind) for p, f in feedback_of(session, subscriber)]

        record_feedback(session, subscriber, second.id, FeedbackKind.FEWER, now=MONDAY)
        record_feedback(session, subscriber, first.id, FeedbackKind.MORE, now=TUESDAY)
        assert listed() == [(second.id, FeedbackKind.FEWER), (first.id, FeedbackKind.MORE)]
        # Rows already loaded in the session (held here) must not hide a new click.
        held = feedback_of(session, subscriber)
        later = TUESDAY + timedelta(hours=1)
        record_feedback(session, subscriber, second.id, FeedbackKind.MORE, now=later)
        assert listed() == [(first.id, FeedbackKind.MORE), (second.id, FeedbackKind.MORE)]
        withdraw_feedback(session, subscriber, first.id)
        assert listed() == [(second.id, FeedbackKind.MORE)]
        assert len(held) == 2


# -- two clicks at once (a double click, two tabs) ------------------------------------


def wait_until_a_query_waits_for_a_lock(database_engine: Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with database_engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return
            watcher.rollback()  # pg_stat_activity is a snapshot per transaction
            time.sleep(0.02)
    raise AssertionError("the second click never waited for the first")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (FeedbackKind.MORE, FeedbackKind.FEWER, FeedbackKind.FEWER),
        (FeedbackKind.FEWER, FeedbackKind.FEWER, FeedbackKind.FEWER),
        (None, None, None),
    ],
    ids=["more-then-fewer", "fewer-twice", "undo-twice"],
)
def test_a_second_click_while_the_first_is_saved_does_not_fail(
    database_engine: Engine,
    first: FeedbackKind | None,
    second: FeedbackKind | None,
    expected: FeedbackKind | None,
) -> None:
    if database_engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the second click waits its turn")
    reader = make_reader(database_engine)
    paper = add_paper(database_engine)
    factory = make_session_factory(database_engine)
    if first is None:
        with unit_of_work(factory) as session:
            subscriber = session.get_one(Subscriber, reader.id)
            record_feedback(session, subscriber, paper.id, FeedbackKind.MORE, now=MONDAY)

    def click(kind: FeedbackKind | None) -> None:
        with unit_of_work(factory) as session:
            subscriber = session.get_one(Subscriber, reader.id)
            if kind is None:
                withdraw_feedback(session, subscriber, paper.id)
            else:
                record_feedback(session, subscriber, paper.id, kind, now=TUESDAY)

    errors: list[BaseException] = []

    def second_click() -> None:
        try:
            click(second)  # warnings are errors here too (pyproject's filterwarnings)
        except BaseException as exc:
            errors.append(exc)

    with unit_of_work(factory) as session:
        subscriber = session.get_one(Subscriber, reader.id)
        if first is None:
            withdraw_feedback(session, subscriber, paper.id)
        else:
            record_feedback(session, subscriber, paper.id, first, now=MONDAY)
        # The second request reads before the first commits, then has to wait for it.
        other = threading.Thread(target=second_click)
        other.start()
        wait_until_a_query_waits_for_a_lock(database_engine)
    other.join(timeout=30)

    assert not other.is_alive()
    assert errors == []
    assert recorded(database_engine, reader) == ({} if expected is None else {paper.id: expected})
