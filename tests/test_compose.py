"""docker-compose.yml, checked without Docker.

The file is parsed and its shape checked; then every service built from our image
has its ``command`` run natively, with the service's own environment rewritten to
this machine (PostgreSQL and Redis on localhost, a local SMTP sink, a free port),
and must come up the way its healthcheck or the services that depend on it expect.
The healthchecks of our services are run natively too.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, inspect

from config.settings import Settings
from digest.db.unit_of_work import unit_of_work
from digest.mail.sink import SmtpSink, free_port
from digest.processes import VENV_BIN, Process, start_process, stop_all, wait_for
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from tests.dockerfile import DOCKERFILE, build_and_final_stages, copied_sources, instructions
from tests.factories import make_subscriber
from tests.paths import PROJECT_ROOT
from tests.services import RedisDatabase, empty_redis_database, fresh_postgres_database

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
TEST_SECRET = "compose-test-secret-key"
# Variables that `docker compose` interpolates from the shell / an .env file.
COMPOSE_VARIABLES = {"DIGEST_SECRET_KEY": TEST_SECRET}

EXPECTED_SERVICES = {"postgres", "redis", "mailpit", "migrate", "web", "worker", "beat", "inbound"}
WITH_HEALTHCHECK = {"postgres", "redis", "web", "worker", "inbound"}
EXPECTED_TABLES = {"papers", "popularity_signals", "subscribers", "deliveries", "delivery_papers"}


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
BUILT_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)


# --- docker compose semantics that the tests need -------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"] or ""
        current = variables.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-") and missing:
            return arg
        if op in ("?", ":?") and missing:
            raise KeyError(f"compose would refuse to start: {name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def environment_of(service: dict[str, Any], variables: dict[str, str]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): interpolate(str(v), variables) for k, v in raw.items()}


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    """The healthcheck as an argv to run here (CMD-SHELL goes through ``sh -c``)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test.replace("$$", "$")]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["sh", "-c", rest[0].replace("$$", "$")]
    assert kind == "CMD", test
    return [str(arg).replace("$$", "$") for arg in rest]


def native(argv: list[str]) -> list[str]:
    """Programs of our image (digest, celery, python) come from the tests' virtualenv."""
    if argv and (VENV_BIN / argv[0]).exists():
        return [str(VENV_BIN / argv[0]), *argv[1:]]
    return list(argv)


def shell_native(script: str) -> str:
    for program in ("digest", "celery", "python"):
        script = re.sub(rf"(?<![\w/.-]){program}(?=\s)", str(VENV_BIN / program), script)
    return script


def native_healthcheck(service: dict[str, Any]) -> list[str]:
    argv = healthcheck_argv(service)
    if argv[:2] == ["sh", "-c"]:
        return ["sh", "-c", shell_native(argv[2])]
    return native(argv)


# --- static checks ----------------------------------------------------------------------


def test_compose_declares_the_stack() -> None:
    assert set(SERVICES) >= EXPECTED_SERVICES
    for name in WITH_HEALTHCHECK:
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit")
    assert "pg_isready" in " ".join(healthcheck_argv(SERVICES["postgres"]))
    assert healthcheck_argv(SERVICES["redis"]) == ["redis-cli", "ping"]
    assert "inspect ping" in " ".join(healthcheck_argv(SERVICES["worker"]))
    assert "/health" in " ".join(healthcheck_argv(SERVICES["web"]))

    assert set(BUILT_SERVICES) == {"migrate", "web", "worker", "beat", "inbound"}
    commands = {name: SERVICES[name]["command"] for name in BUILT_SERVICES}
    assert all(
        isinstance(c, list) and all(isinstance(a, str) for a in c) for c in commands.values()
    )
    assert commands["migrate"] == ["digest", "db", "upgrade"]
    assert commands["web"] == [
        "digest", "web", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"
    ]  # fmt: skip
    assert commands["worker"][:2] == ["digest", "worker"]
    assert commands["beat"][:2] == ["digest", "beat"]
    assert commands["inbound"] == ["digest", "inbound", "--host", "0.0.0.0", "--port", "2525"]
    # The MX record's port 25 reaches it.
    assert "25:2525" in [str(p) for p in SERVICES["inbound"]["ports"]]
    assert "2525" in " ".join(healthcheck_argv(SERVICES["inbound"]))

    def condition(service: str, on: str) -> str:
        return str(SERVICES[service]["depends_on"][on]["condition"])

    assert condition("migrate", "postgres") == "service_healthy"
    for name in ("web", "worker", "beat", "inbound"):
        assert condition(name, "migrate") == "service_completed_successfully"
    assert condition("inbound", "postgres") == "service_healthy"
    for name in ("worker", "beat"):
        assert condition(name, "redis") == "service_healthy"
    assert SERVICES["migrate"].get("restart", "no") == "no"


def test_compose_environment_points_at_the_stack() -> None:
    for name in BUILT_SERVICES:
        env = environment_of(SERVICES[name], COMPOSE_VARIABLES)
        assert env["DIGEST_ENVIRONMENT"] == "production"
        assert env["DIGEST_DATABASE_URL"] == (
            "postgresql+psycopg://digest:digest@postgres:5432/digest"
        )
        assert env["DIGEST_BROKER_URL"] == "redis://redis:6379/0"
        assert env["DIGEST_RATE_LIMIT_URL"] == "redis://redis:6379/1"
        assert env["DIGEST_SMTP_URL"] == "smtp://mailpit:1025"
        assert env["DIGEST_SECRET_KEY"] == TEST_SECRET
        assert env["DIGEST_BASE_URL"] and env["DIGEST_FROM_ADDRESS"]
        # Without a secret key compose refuses to start rather than run with a default.
        with pytest.raises(KeyError, match="DIGEST_SECRET_KEY"):
            environment_of(SERVICES[name], {})

    postgres = environment_of(SERVICES["postgres"], {})
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        "digest",
        "digest",
        "digest",
    )
    mailpit_ports = " ".join(str(p) for p in SERVICES["mailpit"].get("ports", []))
    assert "8025" in mailpit_ports and "1025" in mailpit_ports


def test_dockerfile_runs_the_web_command_as_a_non_root_user() -> None:
    lines = instructions(DOCKERFILE.read_text())
    images = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert images and all(image == "python:3.12-slim" for image in images)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert json.loads(cmd.removeprefix("CMD ")) == SERVICES["web"]["command"]
    assert any(line.startswith("WORKDIR /app") for line in lines)


def test_the_image_runs_the_wheel_not_the_checkout() -> None:
    build, final = build_and_final_stages()
    # templates/ ships inside the wheel, so the build stage needs it beside the packages.
    assert {"pyproject.toml", "config", "digest", "workers", "templates"} <= {
        source for source, _ in copied_sources(build)
    }
    assert any(line.startswith("RUN pip wheel") for line in build)
    _, name = build[0].split(" AS ")
    assert any(line.startswith(f"COPY --from={name} ") for line in final)
    installs = [line for line in final if "pip install" in line]
    assert any(".whl" in line for line in installs)
    assert not any(arg in ("-e", "--editable") for line in installs for arg in line.split())
    # No sources beside the installed packages: only pyproject.toml, for the dependencies.
    assert [source for source, _ in copied_sources(final)] == ["pyproject.toml"]


# --- running our services natively ------------------------------------------------------


@dataclass
class Stack:
    """This machine standing in for the compose network."""

    database_url: str
    broker_url: str
    smtp_url: str
    workdir: Path
    started: list[Process] = field(default_factory=list)

    def env(self, name: str) -> dict[str, str]:
        env = environment_of(SERVICES[name], COMPOSE_VARIABLES)
        env.update(
            DIGEST_DATABASE_URL=self.database_url,
            DIGEST_BROKER_URL=self.broker_url,
            # limits keeps its counters under its own key prefix: the broker's Redis will do.
            DIGEST_RATE_LIMIT_URL=self.broker_url,
            DIGEST_SMTP_URL=self.smtp_url,
            DIGEST_SECRET_KEY=TEST_SECRET,
            # The image sets DIGEST_DATA_DIR=/app/data; here, a temporary directory.
            DIGEST_DATA_DIR=str(self.workdir / "data"),
            # No internet here: beat would ingest the remote sources otherwise.
            DIGEST_SOURCES="sample",
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        # Docker sets HOSTNAME in every container; the worker healthcheck uses it.
        return {**base, "HOSTNAME": socket.gethostname(), **env}

    def start(self, name: str, argv: list[str]) -> Process:
        service = start_process(name, native(argv), workdir=self.workdir, env=self.env(name))
        self.started.append(service)
        return service

    def run(
        self, argv: list[str], *, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout
        )

    def stop_all(self) -> None:
        stop_all(self.started)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database("digest_compose") as url:
        yield url


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with empty_redis_database(RedisDatabase.COMPOSE_BROKER) as url:
        yield url


@pytest.fixture
def stack(
    postgres_database: str, broker_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[Stack]:
    stack = Stack(postgres_database, broker_url, smtp_sink.url, tmp_path)
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def migrated(
    postgres_database: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The ``migrate`` service, run once for the module: the others depend on it."""
    workdir = tmp_path_factory.mktemp("migrate")
    stack = Stack(postgres_database, broker_url, "smtp://127.0.0.1:1", workdir)
    return stack.run(native(SERVICES["migrate"]["command"]), env=stack.env("migrate"), timeout=120)


def check_migrate(stack: Stack, migrated: subprocess.CompletedProcess[str]) -> None:
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    engine = create_engine(stack.database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables >= EXPECTED_TABLES | {"alembic_version"}
    # Running it again (every `docker compose up` does) is a no-op that succeeds.
    again = stack.run(native(SERVICES["migrate"]["command"]), env=stack.env("migrate"), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr


def check_web(stack: Stack) -> None:
    port = free_port()
    argv = list(SERVICES["web"]["command"])
    argv[argv.index("--port") + 1] = str(port)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    web = stack.start("web", argv)

    answer: dict[str, Any] = {}

    def healthy() -> bool:
        assert web.alive(), web.report()
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.TransportError:
            return False
        answer.update(status=response.status_code, body=response.json())
        return response.status_code == 200

    assert wait_for(healthy, timeout=30), f"no healthy answer: {answer}\n{web.report()}"
    assert answer["body"] == {"status": "ok", "database": "ok"}

    check = [arg.replace(":8000/", f":{port}/") for arg in native_healthcheck(SERVICES["web"])]
    result = stack.run(check, env=web.env, timeout=30)
    assert result.returncode == 0, f"web healthcheck failed: {result.stderr}\n{web.report()}"

    # A year-long link is a credential: the access log shows the path without it.
    httpx.get(f"http://127.0.0.1:{port}/preferences/SECRET-TOKEN-12345", timeout=5)
    assert wait_for(lambda: "GET /preferences/… HTTP" in web.output(), timeout=10), web.report()
    assert "SECRET-TOKEN-12345" not in web.output()


def check_worker(stack: Stack) -> None:
    worker = stack.start("worker", list(SERVICES["worker"]["command"]))
    check = native_healthcheck(SERVICES["worker"])
    results: list[subprocess.CompletedProcess[str]] = []

    def pongs() -> bool:
        assert worker.alive(), worker.report()
        results.append(stack.run(check, env=worker.env, timeout=60))
        return results[-1].returncode == 0

    ok = wait_for(pongs, timeout=60, interval=1)
    last = results[-1] if results else None
    assert ok, f"worker healthcheck never passed: {last}\n{worker.report()}"
    assert "pong" in results[-1].stdout
    assert worker.alive(), worker.report()


def check_beat(stack: Stack) -> None:
    beat = stack.start("beat", list(SERVICES["beat"]["command"]))

    def started() -> bool:
        assert beat.alive(), beat.report()
        output = beat.output()
        return "beat: Starting" in output or "Scheduler:" in output

    assert wait_for(started, timeout=30), beat.report()
    time.sleep(2)
    assert beat.alive(), beat.report()
    # Beat keeps its schedule in the data directory (a volume in compose).
    assert list((stack.workdir / "data").glob("celerybeat-schedule*")), beat.report()


def check_inbound(stack: Stack) -> None:
    port = free_port()
    argv = list(SERVICES["inbound"]["command"])
    argv[argv.index("--port") + 1] = str(port)
    inbound = stack.start("inbound", argv)
    check = [arg.replace("2525", str(port)) for arg in native_healthcheck(SERVICES["inbound"])]

    def healthy() -> bool:
        assert inbound.alive(), inbound.report()
        return stack.run(check, env=inbound.env, timeout=30).returncode == 0

    assert wait_for(healthy, timeout=60), inbound.report()

    # A reader unsubscribes through their digest's mailto: the service reads the
    # stack's database and secret key.
    env = inbound.env
    runtime = Runtime(
        Settings.from_values(
            environment="production",
            database_url=stack.database_url,
            secret_key=env["DIGEST_SECRET_KEY"],
            from_address=env["DIGEST_FROM_ADDRESS"],
        )
    )
    try:
        with unit_of_work(runtime.session_factory) as session:
            reader = make_subscriber(session)
            reader_id = reader.id
            mailto = runtime.links.unsubscribe(reader).mailto
        address, _, query = mailto.removeprefix("mailto:").partition("?subject=")
        mail = f"Subject: {unquote(query)}\r\n\r\n".encode()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("reader@example.org", [address], mail)
            client.mail("spam@spam.example")
            assert client.rcpt("anyone@elsewhere.example")[0] == 550
        with unit_of_work(runtime.session_factory) as session:
            subscriber = session.get(Subscriber, reader_id)
            assert subscriber is not None
            assert subscriber.status == SubscriberStatus.UNSUBSCRIBED, inbound.report()
    finally:
        runtime.dispose()


@pytest.mark.services
@pytest.mark.parametrize("name", BUILT_SERVICES)
def test_service_starts_natively(
    name: str, stack: Stack, migrated: subprocess.CompletedProcess[str]
) -> None:
    if name == "migrate":
        check_migrate(stack, migrated)
        return
    # Everything else starts after migrate completed successfully, as in compose.
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    checks: dict[str, Callable[[Stack], None]] = {
        "web": check_web,
        "worker": check_worker,
        "beat": check_beat,
        "inbound": check_inbound,
    }
    assert name in checks, f"service {name} is built from our image but has no native check"
    checks[name](stack)
