"""Unsubscribe under load: the RFC 8058 one-click POST after a large send.

    apt-get install -y wrk        # the load generator (once)
    .venv/bin/python benchmarks/web.py [--subscribers 150000] [--duration 30]
        [--connections 16,64] [--workers 1,2] [--wrk-threads 1]
        [--postgres URL] [--profile DIR]

The issue's target: at least 1,000 requests/s at p99 < 50 ms on a 2-core machine.

What it does:

- a scratch PostgreSQL database (dropped afterwards), migrated, with N active
  subscribers inserted in bulk, and each one's unsubscribe link signed by
  ``digest.subscriptions.links.Links`` with the secret key the server is given;
- the real server in a subprocess, as the Dockerfile and docker-compose.yml
  start it (``digest web``, access log on) and in production configuration
  (``DIGEST_ENVIRONMENT=production``, a private secret key, PostgreSQL), once
  per ``--workers`` value (``digest web --workers N``: uvicorn's worker
  processes on one socket); on PostgreSQL the one-click POST is answered before
  FastAPI's routing, its UPDATE on an async connection (``digest.web.one_click``);
- for each server and each concurrency: every subscriber set back to active, then
  ``wrk`` for the given duration with a Lua script that POSTs
  ``List-Unsubscribe=One-Click`` (``application/x-www-form-urlencoded``) to
  ``/unsubscribe/<token>``, each request for a subscriber not hit before in that
  run (wrk thread k takes tokens k, k+T, k+2T...), so every request
  unsubscribes someone (a short warm-up precedes the runs);
- requests/s and the latency distribution that wrk measured, its socket errors
  and the responses that were not 2xx (counted by the script); then SQL checks
  that the subscribers unsubscribed are exactly among those whose links were
  sent, and at least as many as the 2xx responses (150,000 subscribers by
  default: a 30 s run at 5,000 requests/s, each for someone new);
- CPU time over the run of the server processes, PostgreSQL (backends that
  ended during the run included) and wrk, as a share of one core, and what else
  ran on the machine meanwhile; the PostgreSQL sessions opened and transactions
  committed during the run (sessions opened mean connections the pool let go);
- with ``--profile DIR``, py-spy (``.venv/bin/pip install py-spy``) samples the
  thread holding the GIL in the server processes during each run; the collapsed
  stacks go to DIR, and the share of the parts of a request (HTTP, the ASGI app,
  the unit of work: SELECT, commit, pool checkout...) is printed. py-spy takes
  CPU too: compare figures from runs without it.

uvicorn runs on uvloop and httptools when they are installed (the project
depends on ``uvicorn[standard]``), else on asyncio and h11; the header line
says which. With asyncio, ``--workers`` above 1 leaves Nagle's algorithm on
(uvicorn issue #3149): about 40 ms more per keep-alive request.

Caveats: wrk, PostgreSQL and the server share the same cores, so the figures
are a floor for a machine where the load comes from elsewhere. wrk (not wrk2,
which Debian does not package) is a closed loop: c connections each wait for
their answer, so the mean latency is c / throughput (Little's law): at c=64,
p99 < 50 ms needs far more than 1,280 requests/s, and the target is within
reach at about c=16; it also measures latency from when it sent a request, so
a stalled server is under-reported (coordinated omission). Connections are kept
alive, while real one-click requests come from many mail providers' connections.

Beside this file: ``wrk.py`` (the Lua script and wrk's figures), ``cpu.py`` (who
spent the CPU), ``gil_profile.py`` (py-spy); ``digest.processes`` starts and
stops the server as the service tests do.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, insert, select, text, update

from config.settings import Settings
from cpu import CpuSnapshot, process_tree
from digest.clock import utcnow
from digest.db.engine import make_engine, scratch_postgres_database
from digest.db.migrate import upgrade
from digest.mail.sink import free_port
from digest.processes import VENV_BIN, Process, start_process, stop, wait_for
from digest.runtime import Runtime
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber
from gil_profile import finish_profiler, keep_profile, start_profiler
from wrk import WRK_SCRIPT, WrkFigures, expected_ids, parse_wrk, run_wrk, wrk_argv

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


# -- data ---------------------------------------------------------------------------


def create_subscribers(engine: Engine, count: int) -> list[int]:
    """``count`` active subscribers in one bulk insert; their ids in order."""
    now = utcnow()
    rows = [
        {
            "email": f"reader{i:07d}@bench.example",
            "status": SubscriberStatus.ACTIVE,
            "frequency": Frequency.DAILY,
            "interests": "machine learning, compilers",
            "created_at": now,
            "confirmed_at": now,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Subscriber), rows)
        ids = connection.execute(select(Subscriber.id).order_by(Subscriber.id)).scalars().all()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE subscribers"))
    return list(ids)


def unsubscribe_paths(engine: Engine, links: Links) -> list[tuple[int, str]]:
    """Each subscriber's id and the path of the unsubscribe link its emails carry."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Subscriber.id, Subscriber.token_version, Subscriber.confirm_nonce).order_by(
                Subscriber.id
            )
        ).all()
    paths = []
    for id_, version, nonce in rows:
        # Transient, never added to a session: Links reads only these attributes.
        subscriber = Subscriber(id=id_, token_version=version, confirm_nonce=nonce)
        paths.append((id_, urlsplit(links.unsubscribe(subscriber).https_url).path))
    return paths


def reset_subscribers(engine: Engine) -> None:
    """Everyone active again, dead row versions cleaned up: each run starts alike."""
    with engine.begin() as connection:
        connection.execute(
            update(Subscriber)
            .where(Subscriber.status != SubscriberStatus.ACTIVE)
            .values(status=SubscriberStatus.ACTIVE, unsubscribed_at=None)
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE subscribers"))


def unsubscribed_ids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(Subscriber.id).where(Subscriber.status == SubscriberStatus.UNSUBSCRIBED)
            ).scalars()
        )


def count_unsubscribed(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(Subscriber)
                .where(Subscriber.status == SubscriberStatus.UNSUBSCRIBED)
            ).scalar_one()
        )


def database_counters(engine: Engine) -> dict[str, int]:
    """PostgreSQL's cumulative counters for this database (sessions opened, commits)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = connection.execute(
            text(
                "SELECT sessions, xact_commit FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return {"sessions": int(row.sessions), "commits": int(row.xact_commit)}


# -- the server ---------------------------------------------------------------------


@dataclass
class Server:
    process: Process
    url: str
    argv: list[str]

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def pids(self) -> list[int]:
        """The started process and its descendants (uvicorn's workers)."""
        return process_tree(self.pid)


def server_argv(workers: int, port: int) -> list[str]:
    """``digest web`` as the Dockerfile and docker-compose.yml run it."""
    digest = VENV_BIN / "digest"
    executable = str(digest) if digest.exists() else shutil.which("digest") or "digest"
    argv = [executable, "web", "--host", "127.0.0.1", "--port", str(port)]
    return argv if workers == 1 else [*argv, "--workers", str(workers)]


def server_name(workers: int) -> str:
    return "digest-web" if workers == 1 else f"digest-web-{workers}"


def event_loop() -> str:
    """What uvicorn's "auto" picks in this environment (the server's too)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


@contextmanager
def running_server(
    workers: int, database_url: str, secret_key: str, folder: Path
) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "DIGEST_ENVIRONMENT": "production",
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SECRET_KEY": secret_key,
        "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_DATA_DIR": str(folder / "data"),
        # Unsubscribing queues nothing and counts no rate limit: in-process defaults.
        "DIGEST_BROKER_URL": "",
        "DIGEST_RATE_LIMIT_URL": "",
    }
    argv = server_argv(workers, port)
    process = start_process(server_name(workers), argv, workdir=folder, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", argv)
    try:
        wait_healthy(server)
        yield server
    finally:
        # Under load, uvicorn takes a while to finish what it holds.
        stop(process.process, grace=15.0)


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    def healthy() -> bool:
        if not server.process.alive():
            sys.exit(f"{server.name} exited:\n{server.process.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer:
                return bool(json.load(answer).get("database") == "ok")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    if not wait_for(healthy, timeout=timeout, interval=0.25):
        sys.exit(f"{server.name} not healthy after {timeout:.0f}s:\n{server.process.output()}")


# -- a run --------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    connections: int
    threads: int
    wrk: WrkFigures
    cpu_share: dict[str, float] = field(default_factory=dict)
    load_before: float = 0.0
    server_processes: list[float] = field(default_factory=list)
    # PostgreSQL sessions opened and transactions committed during the run.
    database: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def meets_target(self) -> bool:
        return self.wrk.rps >= TARGET_RPS and self.wrk.latency_ms["p99"] < TARGET_P99_MS


def measure(
    server: Server,
    *,
    connections: int,
    threads: int,
    duration: float,
    script: Path,
    paths_file: Path,
    profile_to: Path | None = None,
) -> Run:
    """wrk against ``server``, and the CPU that everyone spent meanwhile."""
    threads = min(threads, connections)
    argv = wrk_argv(
        server.url,
        connections=connections,
        threads=threads,
        duration=duration,
        script=script,
        paths_file=paths_file,
    )
    profiler = start_profiler(server.pid, duration, profile_to) if profile_to else None
    load = os.getloadavg()[0]
    started = time.monotonic()
    before = CpuSnapshot.take(server.pids())
    output = run_wrk(argv)
    after = CpuSnapshot.take(server.pids())
    wall = time.monotonic() - started
    if profiler is not None:
        finish_profiler(profiler)
    return Run(
        server=server.name,
        connections=connections,
        threads=threads,
        wrk=parse_wrk(output),
        cpu_share=before.shares(after, wall),
        load_before=load,
        server_processes=before.per_server_process(after, wall),
    )


def verify(run: Run, engine: Engine, ids: list[int]) -> None:
    """What the database says after the run, against what wrk sent and received."""
    # Requests in flight when wrk stopped still complete: wait until the count settles.
    counts: list[int] = []

    def settled() -> bool:
        counts.append(count_unsubscribed(engine))
        return len(counts) > 1 and counts[-1] == counts[-2]

    wait_for(settled, timeout=20.0, interval=0.5)
    done = unsubscribed_ids(engine)
    figures = run.wrk
    hit, wrapped = expected_ids(ids, figures.sent_per_thread)
    ok_responses = figures.requests - figures.non2xx
    strays = done - hit

    def check(passed: bool, line: str) -> None:
        run.checks.append(f"{'ok  ' if passed else 'FAIL'} {line}")
        run.ok = run.ok and passed

    check(figures.non2xx == 0, f"non-2xx responses: {figures.non2xx}")
    errors = sum(figures.socket_errors.values())
    check(errors == 0, f"socket errors: {errors} {figures.socket_errors}")
    check(len(done) > 0, f"unsubscribed rows: {len(done):,}")
    check(not strays, f"unsubscribed rows whose link was not sent: {len(strays)}")
    if wrapped:
        run.checks.append(
            f"note some links were sent twice (only {len(ids):,} subscribers): "
            "use --subscribers to give every request a new one"
        )
        check(len(done) == len(hit), f"distinct links sent {len(hit):,} = rows unsubscribed")
    else:
        # Every 2xx unsubscribed someone; a request sent as wrk stopped may have
        # completed on the server without wrk reading its answer.
        check(
            ok_responses <= len(done) <= len(hit),
            f"2xx responses {ok_responses:,} <= rows unsubscribed {len(done):,} "
            f"<= links sent {len(hit):,}",
        )


# -- report ---------------------------------------------------------------------------


def report(run: Run) -> None:
    figures, lat = run.wrk, run.wrk.latency_ms
    verdict = "meets" if run.meets_target else "misses"
    print(
        f"{run.server:12} c={run.connections:<4} {figures.rps:8,.0f} req/s  "
        f"p50 {lat['p50']:6.1f}  p90 {lat['p90']:6.1f}  p99 {lat['p99']:6.1f}  "
        f"max {lat['max']:7.1f} ms  {figures.requests:>7,} requests  "
        f"non-2xx {figures.non2xx}  ({verdict} the target)",
        flush=True,
    )
    shares = "  ".join(f"{name} {100 * share:4.0f}%" for name, share in run.cpu_share.items())
    workers = [share for share in run.server_processes if share >= 0.02]
    each = f" (by process: {' + '.join(f'{100 * w:.0f}%' for w in workers)})"
    print(
        f"    CPU (100% = one core of {os.cpu_count()}): {shares}"
        f"{each if len(workers) > 1 else ''}  (load average before: {run.load_before:.1f})"
    )
    if run.database:
        print(
            f"    PostgreSQL: {run.database['sessions']:,} sessions opened, "
            f"~{run.database['commits']:,} commits during the run"
        )
    if run.cpu_share["other"] > 0.1 or run.cpu_share["stolen by the host"] > 0.1:
        print(
            "    note: other work (py-spy when profiling, other processes) took CPU "
            "during this run; the figures are disturbed"
        )
    for line in run.checks:
        print(f"    {line}")


def summary(runs: list[Run]) -> None:
    print()
    print("summary")
    for run in runs:
        lat = run.wrk.latency_ms
        print(
            f"  {run.server:12} c={run.connections:<4} {run.wrk.rps:8,.0f} req/s  "
            f"p50 {lat['p50']:6.1f} ms  p99 {lat['p99']:6.1f} ms  "
            f"errors {run.wrk.non2xx + sum(run.wrk.socket_errors.values())}  "
            f"{'meets' if run.meets_target else 'misses'} target  "
            f"{'checks ok' if run.ok else 'CHECKS FAILED'}"
        )


# -- main -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=150_000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--connections", default="16,64", help="comma-separated")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated: digest web --workers N, one run each"
    )
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, before the runs")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--profile", type=Path, help="py-spy the server into this folder")
    return parser.parse_args()


def signed_links(engine: Engine, url: str, secret_key: str, count: int) -> list[tuple[int, str]]:
    """``count`` active subscribers, and each one's id and unsubscribe path, signed
    with the server's secret key."""
    started = time.perf_counter()
    ids = create_subscribers(engine, count)
    inserted = time.perf_counter() - started
    settings = Settings(
        environment="production",
        secret_key=secret_key,
        database_url=url,
        base_url="http://127.0.0.1:8000",
    )
    started = time.perf_counter()
    signed = unsubscribe_paths(engine, Runtime(settings).links)
    signing = time.perf_counter() - started
    assert [id_ for id_, _ in signed] == ids
    print(
        f"{len(ids):,} active subscribers inserted in {inserted:.1f}s, "
        f"their unsubscribe links signed in {signing:.1f}s",
        flush=True,
    )
    return signed


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or brew install wrk)")
    worker_counts = [int(n) for n in args.workers.split(",")]
    concurrencies = [int(c) for c in args.connections.split(",")]
    secret_key = os.urandom(32).hex()

    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="digest-web-bench-") as name,
        scratch_postgres_database(args.postgres, "digest_bench") as url,
    ):
        folder = Path(name)
        engine = make_engine(url)
        upgrade(engine)
        signed = signed_links(engine, url, secret_key, args.subscribers)
        ids = [id_ for id_, _ in signed]
        paths_file = folder / "paths.txt"
        paths_file.write_text("".join(f"{path}\n" for _, path in signed))
        script = folder / "unsubscribe.lua"
        script.write_text(WRK_SCRIPT)
        print(
            f"wrk -t{args.wrk_threads}, {args.duration:.0f}s per run, keep-alive; "
            f"POST {ONE_CLICK_BODY} to /unsubscribe/<token>; target >= {TARGET_RPS:,.0f} "
            f"req/s at p99 < {TARGET_P99_MS:.0f} ms",
            flush=True,
        )
        for workers in worker_counts:
            with running_server(workers, url, secret_key, folder) as server:
                print(
                    f"{server.name}: {' '.join(server.argv)}  (pids {server.pids()}, "
                    f"{event_loop()})",
                    flush=True,
                )
                if args.warmup > 0:
                    measure(
                        server,
                        connections=min(concurrencies),
                        threads=args.wrk_threads,
                        duration=args.warmup,
                        script=script,
                        paths_file=paths_file,
                    )
                for connections in concurrencies:
                    reset_subscribers(engine)
                    counters = database_counters(engine)
                    run = measure(
                        server,
                        connections=connections,
                        threads=args.wrk_threads,
                        duration=args.duration,
                        script=script,
                        paths_file=paths_file,
                        profile_to=folder / "profile" if args.profile else None,
                    )
                    verify(run, engine, ids)
                    later = database_counters(engine)
                    run.database = {k: later[k] - counters[k] for k in counters}
                    runs.append(run)
                    report(run)
                    if args.profile:
                        saved = args.profile / f"{server.name}-c{connections}.txt"
                        keep_profile(folder / "profile" / "current.txt", saved)
        engine.dispose()

    summary(runs)
    if not all(run.ok for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
