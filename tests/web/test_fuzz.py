"""Whatever arrives in a form, the answer is a page, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from digest.db.engine import make_engine, make_session_factory
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.runtime import Runtime
from digest.subscriptions.subscribers import PREFERENCE_FIELDS
from digest.web.app import create_app
from tests.factories import make_subscriber

# Any text a browser or a bot could send, control characters and surrogates aside.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(
        _env_file=None,
        environment="test",
        secret_key="fuzz-secret",
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'fuzz.db'}",
        base_url="https://digest.example.org",
        # Nothing listens here: notices fail to send, which must not show.
        smtp_url="smtp://127.0.0.1:1",
        subscribe_limit_per_ip="100000/hour",
    )
    engine = make_engine(settings_.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    return settings_


# Module-scoped (hypothesis runs every example in one test call), on SQLite alone, and
# without the subscribe limit: not the conftest's `client`.
@pytest.fixture(scope="module")
def fuzz_client(fuzz_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fuzz_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def preferences(fuzz_settings: Settings, fuzz_client: TestClient) -> tuple[str, str]:
    """A reader's preferences path and a valid form token for it."""
    engine = make_engine(fuzz_settings.resolved_database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        reader = make_subscriber(session)
        url = Runtime(fuzz_settings).links.preferences(reader)
    engine.dispose()
    path = url.removeprefix(fuzz_settings.base_url)
    page = fuzz_client.get(path).text
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return path, token


@FUZZ
@given(email=TEXT, interests=TEXT, frequency=TEXT, website=st.sampled_from(["", "x"]))
def test_the_subscribe_form_never_fails(
    fuzz_client: TestClient, email: str, interests: str, frequency: str, website: str
) -> None:
    answer = fuzz_client.post(
        "/",
        data={"email": email, "interests": interests, "frequency": frequency, "website": website},
    )
    assert answer.status_code in (200, 400), answer.text[:500]


@FUZZ
@given(st.fixed_dictionaries({name: TEXT for name in PREFERENCE_FIELDS}))
def test_the_preferences_form_never_fails(
    fuzz_client: TestClient, preferences: tuple[str, str], fields: dict[str, str]
) -> None:
    path, token = preferences
    answer = fuzz_client.post(path, data={**fields, "csrf": token})
    assert answer.status_code in (200, 400), answer.text[:500]


@FUZZ
@given(token=TEXT, path=st.sampled_from(["unsubscribe", "preferences", "confirm", "confirm-email"]))
def test_any_token_gets_a_page(fuzz_client: TestClient, token: str, path: str) -> None:
    url = f"/{path}/{quote(token, safe='')}"
    for answer in (fuzz_client.get(url), fuzz_client.post(url)):
        assert answer.status_code in (400, 404, 405), answer.text[:500]


def test_the_json_parts_are_described_by_an_openapi_schema(fuzz_client: TestClient) -> None:
    schema = fuzz_client.get("/openapi.json").json()
    assert "/health" in schema["paths"]
    assert "/preferences/{token}/data.json" in schema["paths"]
