"""The mail tests' SMTP server, answering as each test scripts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from digest.mail.sink import ClosingController, free_port
from tests.mail.scripted import ScriptedHandler, ScriptedServer


@pytest.fixture
def smtp_server() -> Iterator[ScriptedServer]:
    handler = ScriptedHandler()
    controller = ClosingController(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield ScriptedServer(controller, handler)
    controller.stop()
