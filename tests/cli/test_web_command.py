"""``digest web`` with the public development secret key: refused where others
can reach it, warned about where only this machine can."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from config.settings import DEFAULT_SECRET_KEY
from digest.cli.main import cli
from digest.mail.sink import SmtpSink, free_port
from tests.services import digest_web


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to serve: a server that answers is not the point."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("DIGEST_SECRET_KEY", "DIGEST_ENVIRONMENT", "DIGEST_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "data"))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "digest.example.org"])
def test_the_default_secret_key_is_refused_on_an_address_others_reach(
    served: list[dict[str, Any]], host: str
) -> None:
    result = CliRunner().invoke(cli, ["web", "--host", host])
    assert result.exit_code != 0
    assert "refusing to serve" in result.output and "DIGEST_SECRET_KEY" in result.output
    assert served == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_the_default_secret_key_on_loopback_is_served_with_a_warning_each_start(
    served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture, host: str
) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert CliRunner().invoke(cli, ["web", "--host", host]).exit_code == 0
    assert len(served) == 2
    warnings = [r for r in caplog.records if "DIGEST_SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)


def test_a_private_secret_key_is_served_anywhere_without_a_warning(
    served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "a-private-random-value-" + "x" * 20)
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["web", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and served and served[0]["host"] == "0.0.0.0"
    assert not [r for r in caplog.records if "DIGEST_SECRET_KEY" in r.getMessage()]
    assert DEFAULT_SECRET_KEY not in result.output


def test_a_direct_client_cannot_claim_other_addresses_to_pass_the_per_ip_limit(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # The attack of issue 15: a new X-Forwarded-For each time, from 127.0.0.1, which
    # uvicorn's own proxy handling believes by default.
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_ENVIRONMENT": "test",
        "DIGEST_SECRET_KEY": "web-command-test-secret",
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SMTP_URL": smtp_sink.url,
        "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_SUBSCRIBE_LIMIT_PER_IP": "3/hour",
    }
    with digest_web(env, tmp_path, port, "--no-access-log"):
        answers = [
            httpx.post(
                f"http://127.0.0.1:{port}/",
                data={"email": f"rotating{n}@example.org", "frequency": "daily"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
                timeout=10,
            ).status_code
            for n in range(4)
        ]
    assert answers == [200, 200, 200, 429]


def test_without_a_broker_and_an_smtp_server_lost_confirmations_are_warned_about(
    served: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: SmtpSink,
) -> None:
    # The embedded default with nothing on its SMTP port: each confirmation would be lost.
    monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING):
        assert CliRunner().invoke(cli, ["web"]).exit_code == 0
    (warning,) = [r.getMessage() for r in caplog.records if "DIGEST_SMTP_URL" in r.getMessage()]
    assert "confirmation emails will be lost" in warning and "digest serve" in warning

    caplog.clear()
    monkeypatch.setenv("DIGEST_SMTP_URL", smtp_sink.url)
    with caplog.at_level(logging.WARNING):
        assert CliRunner().invoke(cli, ["web"]).exit_code == 0
    assert not [r for r in caplog.records if "DIGEST_SMTP_URL" in r.getMessage()]
    assert len(served) == 2
