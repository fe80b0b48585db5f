"""Bulk import speed: `digest subscribers import` of many CSV rows into PostgreSQL.

    .venv/bin/python benchmarks/subscribers_import.py [--rows 50000] [--repeats 3]

Each repeat imports the same file into a fresh scratch database on the machine's
PostgreSQL (``DIGEST_TEST_POSTGRES_URL``, default the local ``test`` database), and
prints rows per second for: validating the rows alone (the form's parser, no
database), a raw ``COPY`` of the same rows' values through psycopg (prepared in
advance, nothing validated: the database's share), the import in process
(validation and insert, committed) and the command end to end (process start
included). The two references measured in the same repeat give the ratio: the
import against validation followed by the raw ``COPY``, the most this design of
an import can reach. The rows look like real readers': interests, authors,
categories, zones.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from sqlalchemy import func, select

from digest.clock import utcnow
from digest.db.engine import make_engine, make_session_factory, scratch_postgres_database
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.processes import VENV_BIN
from digest.subscriptions.csv_io import COLUMNS, import_subscribers, parse_subscriber_rows
from digest.subscriptions.models import Subscriber

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
INTERESTS = [
    "diffusion models; video generation",
    "large language models; reasoning; reinforcement learning",
    "graph neural networks",
    "speech recognition; self-supervised learning; audio",
    "robotics; imitation learning",
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"]
CATEGORIES = ["cs.CL", "cs.CV; cs.LG", "", "stat.ML", "cs.RO"]


def csv_file(rows: int) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS[:-2])  # created_at and confirmed_at are not read
    for n in range(rows):
        writer.writerow(
            [
                f"reader.{n}@lab{n % 97}.example.org",
                "paused" if n % 50 == 0 else "active",
                INTERESTS[n % len(INTERESTS)],
                "Yann LeCun" if n % 7 == 0 else "",
                CATEGORIES[n % len(CATEGORIES)],
                "survey" if n % 11 == 0 else "",
                "weekly" if n % 4 == 0 else "daily",
                str(n % 7),
                str(n % 24),
                ZONES[n % len(ZONES)],
                str(1 + n % 10),
            ]
        )
    return out.getvalue()


RAW_COLUMNS = (
    "email, status, interests, followed_authors, categories, excluded_keywords, frequency, "
    "weekly_day, send_hour, timezone, papers_per_digest, token_version, confirm_nonce, "
    "created_at, confirmed_at"
)


def raw_values(text: str) -> list[tuple[object, ...]]:
    """The file's rows as the table's values, split but not validated."""
    now = utcnow()
    values: list[tuple[object, ...]] = []
    for n, cells in enumerate(list(csv.reader(io.StringIO(text, newline="")))[1:]):
        email, status, interests, authors, categories, keywords, *rest = cells
        frequency, weekly_day, send_hour, timezone, papers = rest
        values.append(
            (
                email,
                status,
                interests,
                orjson.dumps([authors] if authors else []).decode(),
                orjson.dumps(categories.split("; ") if categories else []).decode(),
                orjson.dumps([keywords] if keywords else []).decode(),
                frequency,
                int(weekly_day),
                int(send_hour),
                timezone,
                int(papers),
                2**20 + n,
                0,
                now,
                now,
            )
        )
    return values


def raw_copy(url: str, values: list[tuple[object, ...]]) -> None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with (
        psycopg.connect(dsn) as connection,
        connection.cursor() as cursor,
        cursor.copy(f"COPY subscribers ({RAW_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in values:
            copy.write_row(row)


def rate(rows: int, seconds: float) -> float:
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = csv_file(args.rows)
    digest = VENV_BIN / "digest"
    figures: dict[str, list[float]] = {
        "validate only": [],
        "raw COPY": [],
        "import": [],
        "command": [],
    }
    # Per repeat: the import's rate over that of validation then raw COPY.
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "readers.csv"
        path.write_text(text, encoding="utf-8")
        for _ in range(args.repeats):
            start = time.perf_counter()
            valid, problems = parse_subscriber_rows(io.StringIO(text, newline=""), confirmed=True)
            validating = time.perf_counter() - start
            figures["validate only"].append(rate(args.rows, validating))
            assert len(valid) == args.rows and not problems, problems[:3]

            values = raw_values(text)
            with scratch_postgres_database(POSTGRES_URL, "digest_bench_import") as url:
                engine = make_engine(url)
                upgrade(engine)
                engine.dispose()
                start = time.perf_counter()
                raw_copy(url, values)
                copying = time.perf_counter() - start
                figures["raw COPY"].append(rate(args.rows, copying))

            with scratch_postgres_database(POSTGRES_URL, "digest_bench_import") as url:
                engine = make_engine(url)
                upgrade(engine)
                factory = make_session_factory(engine)
                start = time.perf_counter()
                with unit_of_work(factory) as session:
                    result = import_subscribers(
                        session, io.StringIO(text, newline=""), confirmed=True, now=utcnow()
                    )
                importing = time.perf_counter() - start
                figures["import"].append(rate(args.rows, importing))
                ratios.append((validating + copying) / importing)
                assert len(result.imported) == args.rows, result.summary()
                engine.dispose()

            with scratch_postgres_database(POSTGRES_URL, "digest_bench_import") as url:
                engine = make_engine(url)
                upgrade(engine)
                env = {**os.environ, "DIGEST_DATABASE_URL": url, "DIGEST_SECRET_KEY": "bench"}
                start = time.perf_counter()
                done = subprocess.run(
                    [str(digest), "subscribers", "import", str(path), "--confirmed"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                elapsed = time.perf_counter() - start
                assert done.returncode == 0, done.stderr
                with engine.connect() as connection:
                    stored = connection.scalar(select(func.count()).select_from(Subscriber))
                assert stored == args.rows, (stored, done.stdout)
                figures["command"].append(rate(args.rows, elapsed))
                engine.dispose()

    print(f"{args.rows:,} rows, {args.repeats} repeats (rows/s: median, min-max)")
    for name, rates in figures.items():
        print(
            f"  {name:<14} {statistics.median(rates):>9,.0f}   {min(rates):,.0f}-{max(rates):,.0f}"
        )
    print(
        f"  import / (validate only then raw COPY), same repeat: {statistics.median(ratios):.2f}"
        f"   {min(ratios):.2f}-{max(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
