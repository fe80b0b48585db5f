"""The subscriber flows through the ASGI app, with mail caught by a real SMTP server:
subscribe with double opt-in, preferences, address change, data export, deletion,
unsubscribe and resubscribe."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import Outcome
from digest.delivery.models import Delivery
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import Purpose, Signer
from digest.web.app import create_app
from tests.factories import NOW, make_paper
from tests.web.readers import csrf, make_reader, preferences_path, subscriber, unsubscribe_path

URL = re.compile(r"https://digest\.example\.org(/[\w/.-]+)")


def path_in(message: EmailMessage, prefix: str) -> str:
    """The site path of the first link starting with ``prefix`` in the text part."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    paths = [p for p in URL.findall(body.get_content()) if p.startswith(prefix)]
    assert paths, f"no {prefix} link in the email"
    return str(paths[0])


def subscribe(client: TestClient, email: str, **fields: str) -> Any:
    return client.post("/", data={"email": email, "frequency": "daily", **fields})


def test_double_opt_in_from_the_form_to_an_active_subscription(
    client: TestClient,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    form = client.get("/")
    assert form.status_code == 200 and 'name="email"' in form.text

    answer = subscribe(client, " New.Reader@Example.ORG ", interests="diffusion models")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    pending = subscriber(database_engine, "new.reader@example.org")
    assert pending is not None and pending.status == SubscriberStatus.PENDING
    assert pending.interests == "diffusion models"

    (confirmation,) = smtp_sink.messages()
    assert confirmation["To"] == "new.reader@example.org"
    assert "Confirm" in confirmation["Subject"]
    link = path_in(confirmation, "/confirm/")

    # A mail scanner opening the link confirms nothing.
    opened = client.get(link)
    assert opened.status_code == 200 and "<button" in opened.text
    assert subscriber(database_engine, "new.reader@example.org").status == SubscriberStatus.PENDING  # type: ignore[union-attr]

    confirmed = client.post(link)
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    assert "/preferences/" in confirmed.text
    active = subscriber(database_engine, "new.reader@example.org")
    assert active is not None and active.status == SubscriberStatus.ACTIVE

    # Single use: the same link again only says it was used, and hands out nothing.
    again = client.post(link)
    assert again.status_code == 200 and "This link was already used" in again.text
    assert "/preferences/" not in again.text


def test_the_answer_never_tells_whether_an_address_is_subscribed(
    client: TestClient,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    make_reader(database_engine, email="known@example.org")
    for_known = subscribe(client, "known@example.org")
    for_new = subscribe(client, "unknown@example.org")

    assert for_known.status_code == for_new.status_code == 200
    assert for_known.text.replace("known@", "X@") == for_new.text.replace("unknown@", "X@")
    # The subscribed reader is told by email instead, with a way in.
    by_address = {m["To"]: m for m in smtp_sink.messages()}
    assert "already subscribed" in by_address["known@example.org"]["Subject"]
    assert path_in(by_address["known@example.org"], "/preferences/")
    assert "Confirm" in by_address["unknown@example.org"]["Subject"]


def test_a_bot_filling_the_hidden_field_gets_the_same_page_and_nothing_happens(
    client: TestClient,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    answer = subscribe(client, "victim@example.org", website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert subscriber(database_engine, "victim@example.org") is None
    assert smtp_sink.messages() == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not an address"}, "email", "Please enter a valid email address"),
        ({"email": ""}, "email", "Please enter your email address."),
        ({"email": "a@example.org", "frequency": "hourly"}, "frequency", "daily or weekly"),
        ({"email": "a@example.org", "interests": "x" * 2001}, "interests", "at most 2000"),
    ],
)
def test_a_bad_form_comes_back_with_a_message_and_what_was_typed(
    client: TestClient,
    smtp_sink: SmtpSink,
    database_engine: Engine,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    answer = client.post("/", data={"frequency": "daily", **fields})
    assert answer.status_code == 400
    assert f'id="{field}-error"' in answer.text and message in answer.text
    assert 'aria-invalid="true"' in answer.text or field == "frequency"
    if field == "email":
        assert f'value="{fields["email"]}"' in answer.text
    assert subscriber(database_engine, "a@example.org") is None
    assert smtp_sink.messages() == []


def test_the_form_cannot_bomb_an_inbox(
    client: TestClient,
    smtp_sink: SmtpSink,
) -> None:
    for _ in range(4):
        assert subscribe(client, "target@example.org").status_code == 200
    # One confirmation per address every two minutes (three a day), however often asked.
    assert len(smtp_sink.messages()) == 1


def test_one_client_cannot_subscribe_without_end(
    make_settings: Callable[..., Settings],
    database_url: str,
    smtp_sink: SmtpSink,
) -> None:
    settings = make_settings(
        database_url=database_url, smtp_url=smtp_sink.url, subscribe_limit_per_ip="2/hour"
    )
    with TestClient(create_app(settings)) as client:
        answers = [subscribe(client, f"r{n}@example.org").status_code for n in range(3)]
    assert answers == [200, 200, 429]


def one_click(client: TestClient, settings: Settings, reader: Subscriber) -> Any:
    """The RFC 8058 POST exactly as Gmail sends it: this one field, no cookie."""
    return client.post(
        unsubscribe_path(settings, reader),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_preferences_are_shown_changed_and_kept(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine, interests="graph neural networks")
    path = preferences_path(web_settings, reader)
    shown = client.get(path)
    assert shown.status_code == 200 and "graph neural networks" in shown.text

    saved = client.post(
        path,
        data={
            "csrf": csrf(shown.text),
            "interests": "efficient inference on phones",
            "followed_authors": "Yann LeCun\nHinton, Geoffrey",
            "categories": "cs.LG, cs.CV",
            "excluded_keywords": "blockchain, crypto",
            "frequency": "weekly",
            "weekly_day": "4",
            "send_hour": "18",
            "timezone": "Europe/Paris",
            "papers_per_digest": "12",
        },
    )
    assert saved.status_code == 200 and "Your preferences are saved" in saved.text
    stored = subscriber(database_engine, reader.email)
    assert stored is not None
    assert stored.interests == "efficient inference on phones"
    assert stored.followed_authors == ["Yann LeCun", "Hinton, Geoffrey"]
    assert stored.categories == ["cs.LG", "cs.CV"]
    assert stored.excluded_keywords == ["blockchain", "crypto"]
    assert (stored.frequency, stored.weekly_day, stored.send_hour) == (Frequency.WEEKLY, 4, 18)
    assert (stored.timezone, stored.papers_per_digest) == ("Europe/Paris", 12)


def test_invalid_preferences_change_nothing_and_say_what_is_wrong(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine, interests="robotics")
    path = preferences_path(web_settings, reader)
    answer = client.post(
        path,
        data={
            "csrf": csrf(client.get(path).text),
            "interests": "<script>alert(1)</script> new interests",
            "categories": "cs.LG, not a category!",
            "frequency": "daily",
            "weekly_day": "0",
            "send_hour": "25",
            "timezone": "Mars/Olympus_Mons",
            "papers_per_digest": "99",
        },
    )
    assert answer.status_code == 400
    for message in ("not an arXiv category", "0 to 23", "unknown time zone", "1 to 50"):
        assert message in answer.text
    # What was typed comes back, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; new interests" in answer.text
    assert "<script>alert" not in answer.text
    assert subscriber(database_engine, reader.email).interests == "robotics"  # type: ignore[union-attr]


@pytest.mark.parametrize("number", ["²", "٣", "1.5", "-3", " "])
def test_a_number_field_with_something_else_than_ascii_digits_is_a_message_not_an_error(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    number: str,
) -> None:
    # Found by the fuzz test: "²".isdigit() is true and int("²") raises.
    reader = make_reader(database_engine, interests="robotics")
    path = preferences_path(web_settings, reader)
    answer = client.post(
        path,
        data={
            "csrf": csrf(client.get(path).text),
            "interests": "robotics",
            "frequency": "daily",
            "weekly_day": "0",
            "send_hour": "8",
            "timezone": "UTC",
            "papers_per_digest": number,
        },
    )
    assert answer.status_code == 400
    assert "papers per digest must be a whole number from 1 to 50" in answer.text


@pytest.mark.parametrize("forged", ["", "nonsense", "other-reader"])
def test_a_preferences_change_without_the_pages_own_form_token_is_refused(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    forged: str,
) -> None:
    reader = make_reader(database_engine, interests="robotics")
    token = forged
    if forged == "other-reader":
        other = make_reader(database_engine)
        token = csrf(client.get(preferences_path(web_settings, other)).text)
    answer = client.post(
        preferences_path(web_settings, reader),
        data={"csrf": token, "interests": "hijacked", "frequency": "daily", "send_hour": "7",
              "weekly_day": "0", "timezone": "UTC", "papers_per_digest": "5"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert subscriber(database_engine, reader.email).interests == "robotics"  # type: ignore[union-attr]


def test_pause_and_resume(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    paused = client.post(f"{path}/pause", data={"csrf": csrf(client.get(path).text), "paused": "1"})
    assert "Digests are paused" in paused.text
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.PAUSED  # type: ignore[union-attr]
    resumed = client.post(f"{path}/pause", data={"csrf": csrf(paused.text), "paused": "0"})
    assert "Digests are back on" in resumed.text
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


def test_a_new_address_takes_over_only_once_confirmed_from_that_address(
    client: TestClient,
    web_settings: Settings,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine, email="old@example.org")
    path = preferences_path(web_settings, reader)
    asked = client.post(
        f"{path}/email", data={"csrf": csrf(client.get(path).text), "new_email": "New@Example.org"}
    )
    assert "We sent a confirmation link to new@example.org" in asked.text
    assert subscriber(database_engine, "old@example.org") is not None

    (confirmation,) = smtp_sink.messages()
    assert confirmation["To"] == "new@example.org"
    link = path_in(confirmation, "/confirm-email/")
    assert "new@example.org" in client.get(link).text
    done = client.post(link)
    assert done.status_code == 200 and "Your digests now go to new@example.org" in done.text
    assert subscriber(database_engine, "old@example.org") is None
    assert subscriber(database_engine, "new@example.org") is not None
    assert client.post(link).status_code == 400  # used up


def test_changing_to_a_subscribed_address_moves_nothing_and_reveals_nothing(
    client: TestClient,
    web_settings: Settings,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    make_reader(database_engine, email="taken@example.org")
    path = preferences_path(web_settings, reader)
    asked = client.post(
        f"{path}/email",
        data={"csrf": csrf(client.get(path).text), "new_email": "taken@example.org"},
    )
    assert "We sent a confirmation link to taken@example.org" in asked.text
    # Its owner hears that someone asked, with no link that could move anything.
    (note,) = smtp_sink.messages()
    assert note["To"] == "taken@example.org" and "/confirm-email/" not in str(note)


def test_download_my_data_and_delete_me(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine, interests="protein folding")
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.add(Delivery(subscriber_id=reader.id, edition="2026-11-21", created_at=NOW))
    path = preferences_path(web_settings, reader)

    download = client.get(f"{path}/data.json")
    assert download.headers["content-type"].startswith("application/json")
    assert "attachment" in download.headers["content-disposition"]
    data = json.loads(download.text)
    assert data["email"] == reader.email
    assert data["preferences"]["interests"] == "protein folding"
    assert [d["edition"] for d in data["digests"]] == ["2026-11-21"]

    confirm_page = client.get(f"{path}/delete")
    assert confirm_page.status_code == 200 and subscriber(database_engine, reader.email) is not None
    deleted = client.post(f"{path}/delete", data={"csrf": csrf(confirm_page.text)})
    assert deleted.status_code == 200 and "Your data is deleted" in deleted.text
    assert subscriber(database_engine, reader.email) is None
    with unit_of_work(make_session_factory(database_engine)) as session:
        left = select(func.count()).where(Delivery.subscriber_id == reader.id)
        assert session.scalar(left) == 0
    # Every old link now says the subscription is gone, without an error page.
    gone = client.get(path)
    assert gone.status_code == 404 and "no longer exists" in gone.text
    assert "subscribe again" in gone.text


def test_unsubscribed_by_mistake_resubscribes_from_the_same_page(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    path = unsubscribe_path(web_settings, reader)
    page = client.get(path)
    assert "/preferences/" in page.text  # the softer option is offered
    done = client.post(path)
    assert "You are unsubscribed" in done.text
    back = client.post(f"{path}/resubscribe", data={"csrf": csrf(done.text)})
    assert back.status_code == 200 and "Welcome back" in back.text
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


def test_a_link_for_one_purpose_does_not_open_another(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    token = preferences_path(web_settings, reader).rsplit("/", 1)[1]
    for response in (
        client.post(f"/unsubscribe/{token}"),
        client.get(f"/confirm/{token}"),
        client.post(f"/confirm-email/{token}"),
    ):
        assert response.status_code == 400 and "We could not use this link" in response.text
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize("claims", [(10**30, 1), (1, 10**30), (-1, 1)])
def test_a_signed_link_with_an_id_no_database_holds_is_refused_not_a_server_error(
    client: TestClient, web_settings: Settings, claims: tuple[int, int]
) -> None:
    subscriber_id, version = claims
    signer = Signer(web_settings.secret_key)
    for purpose, path in ((Purpose.PREFERENCES, "/preferences"), (Purpose.CONFIRM, "/confirm")):
        token = signer.sign(purpose, subscriber_id=subscriber_id, version=version, nonce=0)
        response = client.get(f"{path}/{token}")
        assert response.status_code == 400 and "We could not use this link" in response.text


def test_a_digest_already_queued_is_not_sent_after_a_one_click_unsubscribe(
    client: TestClient,
    web_settings: Settings,
    smtp_sink: SmtpSink,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        make_paper(session, first_seen_at=NOW, upvotes=10)
        queued = Delivery(subscriber_id=reader.id, edition="2026-11-21", created_at=NOW)
        session.add(queued)
        session.flush()
        delivery_id = queued.id
    assert one_click(client, web_settings, reader).status_code == 200

    runtime = Runtime(web_settings)
    try:
        result = runtime.send_batch([delivery_id], now=NOW)
    finally:
        runtime.dispose()
    assert result.outcomes == {delivery_id: Outcome.SKIPPED}
    assert smtp_sink.messages() == []


def test_an_unknown_page_is_a_page_too(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    assert client.put("/").status_code == 405


def test_one_click_twice_keeps_the_first_time_and_a_revoked_or_erased_link_says_why(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
) -> None:
    reader = make_reader(database_engine)
    assert one_click(client, web_settings, reader).status_code == 200
    first = subscriber(database_engine, reader.email)
    assert first is not None and first.unsubscribed_at is not None
    assert one_click(client, web_settings, reader).status_code == 200
    assert subscriber(database_engine, reader.email).unsubscribed_at == first.unsubscribed_at  # type: ignore[union-attr]

    revoked = make_reader(database_engine)
    erased = make_reader(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        session.get_one(Subscriber, revoked.id).token_version += 1
        session.delete(session.get_one(Subscriber, erased.id))
    assert one_click(client, web_settings, revoked).status_code == 400
    assert subscriber(database_engine, revoked.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    assert one_click(client, web_settings, erased).status_code == 404
