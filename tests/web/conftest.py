"""The web app under test, on the module's database (both backends), mail to a real sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from digest.mail.sink import SmtpSink
from digest.web.app import create_app


@pytest.fixture
def web_settings(
    make_settings: Callable[..., Settings], database_url: str, smtp_sink: SmtpSink
) -> Settings:
    return make_settings(database_url=database_url, smtp_url=smtp_sink.url)


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings), follow_redirects=False) as client:
        yield client
