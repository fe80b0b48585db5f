from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import DEFAULT_SECRET_KEY, Settings, packaged_templates_dir
from digest.runtime import Runtime


def test_defaults_are_the_embedded_development_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DIGEST_DATABASE_URL",
        "DIGEST_BROKER_URL",
        "DIGEST_ENVIRONMENT",
        "DIGEST_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.environment == "development"
    assert settings.resolved_database_url == f"sqlite:///{Path('data/digest.db').resolve()}"
    assert settings.broker_url == ""


def test_values_come_from_digest_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://u@db/digest")
    monkeypatch.setenv("DIGEST_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("DIGEST_FROM_ADDRESS", "Papers <papers@lab.example>")
    settings = Settings(_env_file=None)
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/digest"
    assert settings.broker_url == "redis://redis:6379/0"
    site = Runtime(settings).site
    assert site.from_domain == "lab.example"
    assert site.unsubscribe_mailto == "unsubscribe@lab.example"


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_default_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="DIGEST_SECRET_KEY must be set"):
        Settings(_env_file=None, environment=environment, secret_key=DEFAULT_SECRET_KEY)
    Settings(_env_file=None, environment=environment, secret_key="a-real-secret")


def test_templates_are_the_packages_unless_digest_templates_dir_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A checkout (this one) keeps them at the top level; tests/test_wheel.py checks a wheel.
    project_templates = Path(__file__).resolve().parents[1] / "templates"
    monkeypatch.delenv("DIGEST_TEMPLATES_DIR", raising=False)
    assert packaged_templates_dir() == project_templates
    assert Settings(_env_file=None).templates_dir == project_templates
    monkeypatch.setenv("DIGEST_TEMPLATES_DIR", str(tmp_path))
    assert Settings(_env_file=None).templates_dir == tmp_path


@pytest.mark.parametrize(
    ("user", "password", "error"),
    [
        ("postmark", "", "go together"),
        ("", "a-long-enough-password", "go together"),
        ("postmark", "short", "at least 16"),
        ("post:mark", "a-long-enough-password", "cannot contain"),
    ],
)
def test_postmark_webhook_credentials_are_whole_and_long(
    user: str, password: str, error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        Settings.from_values(postmark_webhook_user=user, postmark_webhook_password=password)


def test_ses_topics_are_a_comma_separated_list() -> None:
    settings = Settings.from_values(ses_topic_arn=" arn:aws:sns:a:1:t , arn:aws:sns:b:2:u,")

    assert settings.ses_topic_arns == ["arn:aws:sns:a:1:t", "arn:aws:sns:b:2:u"]
