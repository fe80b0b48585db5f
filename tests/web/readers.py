"""Readers for the web tests: rows in the module's database, their links, their forms."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, select

from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.runtime import Runtime
from digest.subscriptions.models import Subscriber
from tests.factories import make_subscriber


def make_reader(engine: Engine, **fields: Any) -> Subscriber:
    with unit_of_work(make_session_factory(engine)) as session:
        reader = make_subscriber(session, **fields)
        session.expunge(reader)
        return reader


def subscriber(engine: Engine, email: str) -> Subscriber | None:
    with unit_of_work(make_session_factory(engine)) as session:
        found = session.scalar(select(Subscriber).where(Subscriber.email == email))
        if found is not None:
            session.expunge(found)
        return found


def preferences_path(settings: Settings, reader: Subscriber) -> str:
    return Runtime(settings).links.preferences(reader).removeprefix(settings.base_url)


def unsubscribe_path(settings: Settings, reader: Subscriber) -> str:
    return Runtime(settings).links.unsubscribe(reader).https_url.removeprefix(settings.base_url)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the form carries no CSRF token"
    return found.group(1)
