"""The subscriber pages against someone who holds a link, forges one, or posts from
another site: each test is an attack that once worked (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.web.app import create_app
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


FOREIGN_ORIGINS = [
    {"Origin": "https://evil.example.net"},
    {"Origin": "null"},
    {"Origin": "http://digest.example.org"},  # the site is https: another origin
    {"Referer": "https://evil.example.net/page.html"},
]


@pytest.mark.parametrize("headers", FOREIGN_ORIGINS)
def test_a_form_posted_from_another_site_is_refused_even_with_its_token(
    client: TestClient, web_settings: Settings, database_engine: Engine, headers: dict[str, str]
) -> None:
    reader = make_reader(database_engine, papers_per_digest=3)
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    answer = client.post(f"{path}/pause", data={"csrf": token, "paused": "1"}, headers=headers)
    assert answer.status_code == 403 and "another site" in answer.text
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]

    subscribed = client.post(
        "/", data={"email": "victim@example.org", "frequency": "daily"}, headers=headers
    )
    assert subscribed.status_code == 403
    assert subscriber(database_engine, "victim@example.org") is None

    pending = make_reader(database_engine, status=SubscriberStatus.PENDING)
    confirm = Runtime(web_settings).links.confirm(pending).removeprefix(web_settings.base_url)
    assert client.post(confirm, headers=headers).status_code == 403
    assert subscriber(database_engine, pending.email).status == SubscriberStatus.PENDING  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://digest.example.org"},
        {"Origin": "https://DIGEST.example.org:443"},
        {"Referer": "https://digest.example.org/preferences/x"},
        {},  # no browser: curl, a script; the token still has to be right
    ],
)
def test_a_form_posted_from_the_sites_own_page_goes_through(
    client: TestClient, web_settings: Settings, database_engine: Engine, headers: dict[str, str]
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    answer = client.post(
        f"{path}/pause",
        data={"csrf": csrf(client.get(path).text), "paused": "1"},
        headers=headers,
    )
    assert answer.status_code == 200 and "Digests are paused." in answer.text


def test_a_one_click_unsubscribe_needs_no_origin_of_ours(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    # RFC 8058: the mail provider posts it, from wherever it is.
    reader = make_reader(database_engine)
    answer = client.post(
        unsubscribe_path(web_settings, reader),
        data={"List-Unsubscribe": "One-Click"},
        headers={"Origin": "https://mail.example.net"},
    )
    assert answer.status_code == 200
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]


def test_pages_send_their_origin_only_to_the_site_itself(client: TestClient) -> None:
    # no-referrer would make a browser post the site's own forms as "Origin: null".
    assert client.get("/").headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("field", "size"),
    [("email", 321), ("email", 1024 * 1024 - 100), ("interests", 5000), ("frequency", 600)],
)
def test_a_field_over_its_limit_is_refused_without_being_echoed(
    client: TestClient, database_engine: Engine, field: str, size: int
) -> None:
    fields = {"email": "big@example.org", "interests": "", "frequency": "daily"}
    fields[field] = ("b" if field != "email" else "x") * (size - 16) + "@big.example.org"
    answer = client.post("/", data=fields)
    assert answer.status_code == 413 and "too long" in answer.text
    assert len(answer.text) < 4000
    assert subscriber(database_engine, "big@example.org") is None


def test_a_preferences_field_over_its_limit_changes_nothing(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine, interests="graphs")
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    answer = client.post(path, data={"csrf": token, "followed_authors": "Ada Lovelace\n" * 50_000})
    assert answer.status_code == 413 and len(answer.text) < 4000
    assert subscriber(database_engine, reader.email).interests == "graphs"  # type: ignore[union-attr]


def test_a_file_sent_as_a_form_field_is_refused_not_dropped(
    client: TestClient, database_engine: Engine
) -> None:
    answer = client.post(
        "/",
        data={"email": "upload@example.org", "frequency": "daily"},
        files={"interests": ("interests.txt", b"diffusion models", "text/plain")},
    )
    assert answer.status_code == 400 and "not files" in answer.text
    assert subscriber(database_engine, "upload@example.org") is None


def test_a_multipart_form_of_text_fields_still_subscribes(
    client: TestClient, database_engine: Engine
) -> None:
    # Sent as multipart/form-data (a page's enctype may say so), text parts only.
    answer = client.post(
        "/",
        files={
            "email": (None, "multipart@example.org"),
            "interests": (None, "diffusion models"),
            "frequency": (None, "daily"),
        },
    )
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    found = subscriber(database_engine, "multipart@example.org")
    assert found is not None and found.interests == "diffusion models"


def test_changing_address_answers_the_same_whether_the_new_one_is_free_or_on_file(
    client: TestClient, web_settings: Settings, database_engine: Engine, smtp_sink: SmtpSink
) -> None:
    make_reader(database_engine, email="taken@example.org")
    answers = {}
    for new in ("taken@example.org", "freee@example.org"):  # the same length
        reader = make_reader(database_engine)
        path = preferences_path(web_settings, reader)
        form_token = csrf(client.get(path).text)
        asked = client.post(f"{path}/email", data={"csrf": form_token, "new_email": new})
        shown = client.get(path)
        answers[new] = [
            (
                answer.status_code,
                {k: v for k, v in answer.headers.items() if k != "content-length"},
                re.sub(
                    r"(/preferences/|/unsubscribe/|/feeds/|value=\")[\w.-]+", r"\1…", answer.text
                )
                .replace(new, "NEW")
                .replace(reader.email, "OLD"),
            )
            for answer in (asked, shown)
        ]
    assert answers["taken@example.org"] == answers["freee@example.org"]
    assert "We sent a confirmation link to NEW" in answers["freee@example.org"][0][2]
    # Each address gets one email: the free one a link to confirm, the taken one's
    # owner a note that someone asked, with no link that could move anything.
    by_address = {m["To"]: m for m in smtp_sink.messages()}
    assert sorted(by_address) == ["freee@example.org", "taken@example.org"]
    assert link_in(by_address["freee@example.org"], "/confirm-email/")
    taken = by_address["taken@example.org"].get_body(preferencelist=("plain",))
    assert taken is not None and "nothing changed" in taken.get_content()
    assert "/confirm-email/" not in taken.get_content()


def subscribe_from(client: TestClient, n: int, forwarded_for: str) -> int:
    return client.post(
        "/",
        data={"email": f"proxied{n}@example.org", "frequency": "daily"},
        headers={"X-Forwarded-For": forwarded_for},
    ).status_code


@pytest.mark.parametrize(
    ("peer", "trusted", "answers"),
    [
        # Behind the configured proxy, each reader has a limit of their own.
        ("10.0.0.5", "127.0.0.1, 10.0.0.0/24", [200, 200, 200, 200]),
        # Anyone else's forwarded addresses are not believed: one limit for the peer.
        ("192.0.2.7", "10.0.0.0/24", [200, 200, 429, 429]),
        ("127.0.0.1", "", [200, 200, 429, 429]),
    ],
)
def test_forwarded_addresses_count_only_from_the_configured_proxies(
    web_settings: Settings, peer: str, trusted: str, answers: list[int]
) -> None:
    settings = web_settings.model_copy(
        update={"trusted_proxies": trusted, "subscribe_limit_per_ip": "2/hour"}
    )
    with TestClient(create_app(settings), client=(peer, 40000)) as client:
        got = [subscribe_from(client, n, f"198.51.100.{n}") for n in range(4)]
    assert got == answers


def test_trusting_every_client_cannot_be_configured(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="DIGEST_TRUSTED_PROXIES"):
        make_settings(trusted_proxies="*")


def link_in(message: EmailMessage, prefix: str) -> str:
    """The site path of the link starting with ``prefix`` in the text part."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(rf"https://digest\.example\.org({prefix}[\w.-]+)", body.get_content())
    assert found, f"no {prefix} link in the email"
    return found.group(1)


def test_sign_out_all_my_links_revokes_them_and_mails_a_fresh_one(
    client: TestClient, web_settings: Settings, database_engine: Engine, smtp_sink: SmtpSink
) -> None:
    reader = make_reader(database_engine, email="forwarder@example.org")
    preferences = preferences_path(web_settings, reader)
    unsubscribe = unsubscribe_path(web_settings, reader)
    page = client.get(preferences)
    assert "Sign out all my links" in page.text

    done = client.post(f"{preferences}/sign-out", data={"csrf": csrf(page.text)})
    assert done.status_code == 200 and "All your links are signed out" in done.text
    assert "/preferences/" not in done.text  # the asker may hold a forwarded link

    assert client.get(preferences).status_code == 400
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    (mailed,) = smtp_sink.messages()
    assert mailed["To"] == "forwarder@example.org"
    fresh = link_in(mailed, "/preferences/")
    assert fresh != preferences and client.get(fresh).status_code == 200
    assert subscriber(database_engine, reader.email).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


def test_an_address_change_signs_out_the_old_mailboxs_links(
    client: TestClient, web_settings: Settings, database_engine: Engine, smtp_sink: SmtpSink
) -> None:
    reader = make_reader(database_engine, email="moving@example.org")
    old = preferences_path(web_settings, reader)
    client.post(
        f"{old}/email", data={"csrf": csrf(client.get(old).text), "new_email": "moved@example.org"}
    )
    (confirmation,) = smtp_sink.messages()
    moved = client.post(link_in(confirmation, "/confirm-email/"))
    assert moved.status_code == 200 and "moved@example.org" in moved.text

    assert client.get(old).status_code == 400
    new = re.search(r'href="https://digest\.example\.org(/preferences/[\w.-]+)"', moved.text)
    assert new is not None and client.get(new.group(1)).status_code == 200
