"""The Celery app is built from the settings it is given, never at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.settings import Settings
from workers.app import create_celery

# What a production host's environment might hold: none of it may leak into an
# app built from explicit settings, and importing must not read it at all.
HOSTILE_ENVIRONMENT = {
    "DIGEST_ENVIRONMENT": "production",
    "DIGEST_BROKER_URL": "redis://broker.invalid:6379/9",
    "DIGEST_DATABASE_URL": "postgresql+psycopg://nobody@db.invalid/none",
    "DIGEST_SEND_BATCH_SIZE": "not-a-number",
}


def test_create_celery_uses_only_the_settings_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in HOSTILE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_values(
        environment="production",
        secret_key="a-private-production-key",
        broker_url="redis://127.0.0.1:6379/3",
        database_url="sqlite:///:memory:",
        sources="sample",
    )
    app = create_celery(settings)
    assert app.conf.broker_url == "redis://127.0.0.1:6379/3"
    assert not app.conf.task_always_eager
    assert app.runtime.settings is settings
    assert app.runtime.engine.url.database == ":memory:"
    assert "digest.dispatch_due" in app.tasks
    app.runtime.dispose()


def test_importing_the_entry_points_reads_no_environment() -> None:
    env = {**os.environ, **HOSTILE_ENVIRONMENT}
    imports = "import workers.app, workers.tasks, digest.web.app, digest.cli, digest.demo"
    subprocess.run([sys.executable, "-c", imports], env=env, check=True, timeout=120)
    # `celery -A workers.app` looks the app up: only then is the environment read.
    lookup = subprocess.run(
        [sys.executable, "-c", "import workers.app; workers.app.app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lookup.returncode != 0
    assert "send_batch_size" in lookup.stderr
