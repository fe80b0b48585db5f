"""Schemathesis over the app's own OpenAPI document: whatever a client sends to any
operation it lists (the JSON parts, /health and a reader's data.json, and the forms),
the answer is never a server error. The forms are fuzzed field by field in
test_fuzz.py; this covers paths, methods, headers and bodies the document allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from config.settings import Settings
from digest.db.engine import make_engine
from digest.db.migrate import upgrade
from digest.web.app import create_app


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    folder: Path = tmp_path_factory.mktemp("openapi")
    app_settings = Settings.from_values(
        environment="test",
        secret_key="openapi-fuzz-secret-key",
        data_dir=folder,
        base_url="https://digest.example.org",
        # Nothing listens here: notices fail to send, which must not show.
        smtp_url="smtp://127.0.0.1:1",
        subscribe_limit_per_ip="100000/hour",
    )
    engine = make_engine(app_settings.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))


# Driven through Hypothesis directly: schemathesis's pytest plugin does not run
# under this pytest (it reads a node attribute pytest 9 no longer has).
FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def test_no_operation_of_the_openapi_document_answers_a_server_error(
    api_schema: schemathesis.BaseSchema,
) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        # A document schemathesis cannot read is a failure here, not fewer cases.
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert {o.path for o in operations} >= {"/health", "/preferences/{token}/data.json", "/"}
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
