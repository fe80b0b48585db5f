"""The machine's PostgreSQL and Redis, as the tests use them.

Several pytest-xdist workers (and other people's runs) share both servers:
PostgreSQL databases get unique names, and each worker empties only Redis
databases of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import IntEnum
from pathlib import Path

import httpx
import redis

from digest.db.engine import scratch_postgres_database
from digest.processes import VENV_BIN, Process, run_to_end, start_process, stop, wait_for

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("DIGEST_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
# Ports a test may take for a Redis server of its own (one it kills and restarts).
_FIRST, _LAST = os.environ.get("DIGEST_TEST_OWN_REDIS_PORTS", "6385-6389").split("-")
OWN_REDIS_PORTS = range(int(_FIRST), int(_LAST) + 1)


class RedisDatabase(IntEnum):
    """Every Redis database a test empties, so that no two tests share one."""

    RATE_LIMITS = 0
    COMPOSE_BROKER = 1
    WORKER_BROKER = 2
    WHEEL_BROKER = 3
    FAULTS_BROKER = 4
    METRICS_BROKER = 5


def redis_database_number(database: RedisDatabase) -> int:
    """Each xdist worker (``gw0``, ``gw1``, …) gets its own block of databases;
    database 0 stays a developer's own stack's."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    return 1 + worker * len(RedisDatabase) + database


def fresh_postgres_database(prefix: str = "digest_test") -> AbstractContextManager[str]:
    """A new, empty PostgreSQL database for this run; dropped afterwards."""
    return scratch_postgres_database(POSTGRES_URL, prefix)


@contextmanager
def empty_redis_database(database: RedisDatabase) -> Iterator[str]:
    """The URL of this worker's Redis database for ``database``, flushed before and after use."""
    number = redis_database_number(database)
    client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
    available = int(str(client.config_get("databases")["databases"]))
    if number >= available:
        client.close()
        raise RuntimeError(
            f"Redis at {REDIS_URL} has {available} databases: too few for this many "
            f"xdist workers ({len(RedisDatabase)} each, after database 0); run fewer"
        )
    client.flushdb()
    try:
        yield f"{REDIS_URL}/{number}"
    finally:
        client.flushdb()
        client.close()


@contextmanager
def rabbitmq_vhost(prefix: str = "digest_test") -> Iterator[str]:
    """The broker URL of a new RabbitMQ virtual host, deleted afterwards: queues of
    their own, whoever else uses the server."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    rabbitmqctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"

    def run(*args: str) -> None:
        subprocess.run([rabbitmqctl, *args], check=True, capture_output=True, timeout=60)

    run("add_vhost", name)
    try:
        run("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ_URL}/{name}"
    finally:
        run("delete_vhost", name)


def broker_url(kind: str, database: RedisDatabase) -> AbstractContextManager[str]:
    """An empty broker of ``kind`` ("redis" or "rabbitmq") for one test."""
    if kind == "rabbitmq":
        return rabbitmq_vhost(f"digest_{database.name.lower()}")
    if kind == "redis":
        return empty_redis_database(database)
    raise ValueError(f"unknown broker {kind!r}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` of the test's own, holding nothing on disk, that can be
    killed and started again empty on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill the server outright: everything it held is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None


@contextmanager
def own_redis_server() -> Iterator[RedisServer]:
    """A running Redis server on the first free port of ``OWN_REDIS_PORTS``."""
    port = next((p for p in OWN_REDIS_PORTS if _port_is_free(p)), None)
    if port is None:
        raise RuntimeError(f"no free port for a Redis server in {OWN_REDIS_PORTS}")
    server = RedisServer(port)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def digest_web(env: dict[str, str], workdir: Path, port: int, *options: str) -> Iterator[Process]:
    """``digest db upgrade``, then ``digest web`` on 127.0.0.1:``port`` until its
    /health answers (the process's output if it never does); stopped afterwards."""
    digest = str(VENV_BIN / "digest")
    run_to_end([digest, "db", "upgrade"], env=env, cwd=workdir)
    argv = [digest, "web", "--host", "127.0.0.1", "--port", str(port), *options]
    web = start_process("web", argv, workdir=workdir, env=env)
    try:

        def healthy() -> bool:
            assert web.alive(), web.report()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_for(healthy, timeout=30, interval=0.2), web.report()
        yield web
    finally:
        stop(web.process)


def smtp_greets(port: int) -> bool:
    """Whether an SMTP server on 127.0.0.1:``port`` sends its 220 greeting."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            return connection.recv(64).startswith(b"220 ")
    except OSError:
        return False


@contextmanager
def digest_serve(
    env: dict[str, str], workdir: Path, port: int, smtp_port: int, *options: str
) -> Iterator[Process]:
    """``digest serve`` on 127.0.0.1:``port``, mail on ``smtp_port``, until its /health
    answers and its SMTP sink greets (the process's output if they never do); stopped
    afterwards."""
    argv = [
        *(str(VENV_BIN / "digest"), "serve", "--port", str(port)),
        *("--smtp-port", str(smtp_port), *options),
    ]
    process = start_process("serve", argv, workdir=workdir, env=env)
    try:

        def ready() -> bool:
            assert process.alive(), process.report()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and smtp_greets(smtp_port)

        assert wait_for(ready, timeout=60, interval=0.2), process.report()
        yield process
    finally:
        stop(process.process)
