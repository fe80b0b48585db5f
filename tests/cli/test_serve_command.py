"""``digest serve``: the whole local service in one real process, on SQLite, with
nothing else running. A person subscribes at the page, reads the confirmation in
``/mailbox``, confirms from its link, and a digest arrives there on the schedule;
SIGTERM stops it all with exit 0. And what it refuses to do, before starting."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import digest.serve
from config.settings import Settings
from digest.cli.main import cli
from digest.mail.sink import free_port
from digest.processes import VENV_BIN, Process, run_to_end, stop, wait_for
from tests.cli.commands import lexical_ranking_file
from tests.services import digest_serve


@dataclass
class Service:
    base_url: str
    env: dict[str, str]
    workdir: Path
    process: Process

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", timeout=10)

    def cli(self, *args: str) -> str:
        return run_to_end([str(VENV_BIN / "digest"), *args], env=self.env, cwd=self.workdir).stdout

    def mailbox(self) -> list[tuple[str, str, str]]:
        """(id, To, Subject) of each listed email, newest first."""
        page = self.get("/mailbox").text
        return re.findall(
            r'<td class="to">([^<]*)</td>\s*<td><a href="/mailbox/([0-9-]+)">([^<]*)</a>', page
        )

    def wait_for_mail(self, to: str) -> list[tuple[str, str]]:
        """(id, Subject) of the emails to ``to``, once there is one."""

        def arrived() -> list[tuple[str, str]]:
            assert self.process.alive(), self.process.report()
            return [(i, subject) for address, i, subject in self.mailbox() if address == to]

        assert wait_for(lambda: bool(arrived()), timeout=90, interval=0.2), (
            f"no email to {to} in /mailbox\n{self.process.report()}"
        )
        return arrived()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    port, smtp_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_ENVIRONMENT": "test",
        "DIGEST_SECRET_KEY": "serve-command-test-secret",
        # The embedded default: SQLite under the data folder, no broker. No
        # DIGEST_BASE_URL: the links name the address served.
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SOURCES": "sample",
        "DIGEST_RANKING_FILE": lexical_ranking_file(tmp_path),
        # Dispatch every 1.2 s: a reader due now has their digest within seconds.
        "DIGEST_DISPATCH_INTERVAL_MINUTES": "0.02",
    }
    # A reader due now (send hour 0 in UTC: due all day), added before the service
    # starts: on SQLite a command's transaction fails when the schedule commits during it.
    digest = str(VENV_BIN / "digest")
    run_to_end([digest, "db", "upgrade"], env=env, cwd=tmp_path)
    run_to_end(
        [
            *(digest, "subscribers", "add", "due.reader@example.org", "--confirmed"),
            *("--send-hour", "0", "--timezone", "UTC", "--interests", "language models"),
        ],
        env=env,
        cwd=tmp_path,
    )
    with digest_serve(env, tmp_path, port, smtp_port) as process:
        yield Service(f"http://127.0.0.1:{port}", env, tmp_path, process)


def test_a_digest_arrives_and_a_new_reader_confirms_in_the_mailbox_with_nothing_else_running(
    service: Service,
) -> None:
    # The sample is ingested at start and dispatch runs every 1.2 s: the due reader's
    # digest arrives, with links to the site served.
    ((digest_id, digest_subject),) = service.wait_for_mail("due.reader@example.org")
    assert re.search(r" · \d{1,2} [A-Z][a-z]{2}$", digest_subject), digest_subject
    digest_html = service.get(f"/mailbox/{digest_id}/html").text
    assert f"{service.base_url}/unsubscribe/" in digest_html
    log = service.process.output()
    assert "ingest sample: 188 new" in log
    assert re.search(r"dispatch: 1 digest\(s\) due", log), log

    # Subscribe at the page: the confirmation is in the mailbox, newest first.
    answer = httpx.post(
        f"{service.base_url}/",
        data={"email": "new.reader@example.org", "frequency": "daily"},
        headers={"Origin": service.base_url},
        timeout=10,
    )
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    ((message_id, subject),) = service.wait_for_mail("new.reader@example.org")
    assert subject == "Confirm your digest subscription"
    assert service.mailbox()[0][1] == message_id

    # Its confirm link points at the site served, and confirms.
    html = service.get(f"/mailbox/{message_id}/html").text
    found = re.search(rf'href="({re.escape(service.base_url)}/confirm/[^"]+)"', html)
    assert found, html
    assert "Confirm your subscription" in httpx.get(found.group(1), timeout=10).text
    confirmed = httpx.post(found.group(1), headers={"Origin": service.base_url}, timeout=10)
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    listed = service.cli("subscribers", "list").splitlines()
    assert [row.split("\t")[1] for row in listed if row.startswith("new.reader@")] == ["active"]
    assert service.process.alive(), service.process.report()


def test_sigterm_stops_the_service_with_exit_0(service: Service) -> None:
    stop(service.process.process)
    assert service.process.process.returncode == 0, service.process.report()
    assert "digest.serve: stopped" in service.process.output()


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Settings]:
    """The settings of each call that would have started the service: none, if it refused."""
    calls: list[Settings] = []
    monkeypatch.setattr(
        digest.serve, "run_local_service", lambda settings, **_: calls.append(settings)
    )
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "data"))
    return calls


def test_with_a_broker_the_workers_run_the_schedule_and_serve_refuses(
    refused: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_BROKER_URL", "redis://127.0.0.1:6379/0")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "DIGEST_BROKER_URL is set" in result.output
    assert refused == []


def test_mail_for_a_real_server_is_refused_rather_than_caught_by_the_sink(
    refused: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_URL", "smtp://smtp.example.org:587")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "smtp.example.org" in result.output
    assert "--smtp-port" in result.output and refused == []

    # Given a port, the sink takes the mail there whatever the URL said.
    assert CliRunner().invoke(cli, ["serve", "--smtp-port", "2525"]).exit_code == 0
    assert [settings.smtp_url for settings in refused] == ["smtp://127.0.0.1:2525"]


def test_the_default_secret_key_is_served_on_loopback_only(refused: list[Settings]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "refusing to serve" in result.output
    assert refused == []
    assert CliRunner().invoke(cli, ["serve", "--port", "8123"]).exit_code == 0
    # The default SMTP URL's port; links to the address served.
    assert [(s.smtp_url, s.base_url) for s in refused] == [
        ("smtp://127.0.0.1:1025", "http://127.0.0.1:8123")
    ]
