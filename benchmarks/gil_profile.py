"""py-spy on the server of benchmarks/web.py: where the thread holding the GIL spends
its time, by the parts of a one-click request and by library."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from digest.processes import VENV_BIN


def start_profiler(pid: int, duration: float, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` and its subprocesses for ``duration`` s, raw stacks to
    ``folder/current.txt``."""
    py_spy = VENV_BIN / "py-spy"
    if not py_spy.exists() and shutil.which("py-spy") is None:
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    argv = [
        str(py_spy) if py_spy.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        # Only the thread holding the GIL: where the server's Python CPU time goes.
        "--gil",
        "--rate",
        "200",
        "--duration",
        str(max(1, int(duration) - 1)),
        "--format",
        "raw",
        "--output",
        str(folder / "current.txt"),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profiler(profiler: subprocess.Popen[bytes]) -> None:
    _, stderr = profiler.communicate(timeout=60)
    if profiler.returncode != 0:
        print(f"    py-spy failed: {stderr.decode(errors='replace').strip()}")


def keep_profile(current: Path, saved: Path) -> None:
    """Keep the run's stacks as ``saved`` and print their summary."""
    saved.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(current, saved)
    print(f"    py-spy: {saved}")
    summarise_profile(saved)


# Where a sample's running function lives, by py-spy's short file name.
AREAS = (
    ("starlette/middleware/base.py", "BaseHTTPMiddleware (the security-headers middleware)"),
    ("uvicorn/", "uvicorn, httptools or h11: HTTP parsing and writing"),
    ("h11/", "uvicorn, httptools or h11: HTTP parsing and writing"),
    ("httptools", "uvicorn, httptools or h11: HTTP parsing and writing"),
    ("logging/", "logging (uvicorn's access log)"),
    ("python_multipart/", "form parsing"),
    ("multipart/", "form parsing"),
    ("starlette/formparsers.py", "form parsing"),
    ("fastapi/", "FastAPI + Starlette: routing, request, response"),
    ("starlette/", "FastAPI + Starlette: routing, request, response"),
    ("anyio/", "thread pool hand-off (anyio, threading, queue)"),
    ("threading.py", "thread pool hand-off (anyio, threading, queue)"),
    ("queue.py", "thread pool hand-off (anyio, threading, queue)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("sqlalchemy/orm/", "SQLAlchemy ORM"),
    ("sqlalchemy/pool/", "SQLAlchemy pool"),
    ("sqlalchemy/", "SQLAlchemy Core + engine"),
    ("psycopg", "psycopg"),
    ("itsdangerous/", "token signature (itsdangerous, hmac, json)"),
    ("hmac.py", "token signature (itsdangerous, hmac, json)"),
    ("digest/", "digest (our code)"),
)


# The parts of a request, by frames on the stack (inclusive time). The middleware
# runs the app in a task of its own, hence two markers for the app.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "loop: HTTP/1.1 parsing (uvicorn: httptools or h11)",
        ("HttpToolsProtocol.data_received (", "H11Protocol.data_received ("),
    ),
    (
        "loop: the ASGI app (middleware, routing, form, response)",
        ("Starlette.__call__ (", "call_next.<locals>.coro ("),
    ),
    (
        "loop:   the one-click shortcut on PostgreSQL (digest.web.one_click)",
        ("OneClickShortcut.__call__ (",),
    ),
    ("loop:     the token's signature", ("Signer.verify (",)),
    (
        "loop:     the one-click UPDATE on the async pool (its connection too)",
        ("OneClickUnsubscriber.unsubscribe (",),
    ),
    ("loop:   reading the form body", ("form_fields (",)),
    ("loop:   writing the response (uvicorn, access log)", ("RequestResponseCycle.send (",)),
    ("loop:     the access log", ("(logging/",)),
    ("pool thread: the unit of work", ("in_transaction.<locals>.run (",)),
    (
        "pool thread:   the one-click UPDATE (unsubscribe_by_link; its connection too)",
        ("unsubscribe_by_link (",),
    ),
    ("pool thread:   loading a subscriber (Session.get: SELECT)", ("Session.get (",)),
    ("pool thread:   the commit (flush, if any; COMMIT)", ("SessionTransaction.commit (",)),
    ("pool thread:   a connection from the pool", ("Pool.connect (",)),
    ("pool thread:     opening new PostgreSQL connections", ("Pool._create_connection (",)),
    ("pool thread:     the pre-ping", ("_do_ping_w_event (",)),
)


REST = "the rest: the event loop itself, hand-offs between loop and pool threads"


def summarise_profile(path: Path) -> None:
    """py-spy's collapsed stacks: the parts of a request (inclusive), and time by
    the area of the running function (self)."""
    phases: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if " (" in frame]
        if not frames or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        top_level = False
        for phase, markers in PHASES:
            if any(marker in stack for marker in markers):
                phases[phase] += count
                top_level = top_level or not phase.partition(": ")[2].startswith(" ")
        if not top_level:
            phases[REST] += count
        leaf_file = frames[-1].rpartition(" (")[2]
        areas[next((area for prefix, area in AREAS if prefix in leaf_file), "other")] += count
    if not total:
        print("    (no samples)")
        return
    print(f"    {total:,} samples of the thread holding the GIL; parts of a request (inclusive):")
    for phase in [*(phase for phase, _ in PHASES), REST]:
        print(f"      {100 * phases[phase] / total:5.1f}%  {phase}")
    print("    by the area of the running function (self):")
    for area, count in areas.most_common():
        print(f"      {100 * count / total:5.1f}%  {area}")
