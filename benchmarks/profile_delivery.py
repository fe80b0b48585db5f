"""CPU per digest of each delivery stage, in this process: rank, compose, mail.

    .venv/bin/python benchmarks/profile_delivery.py [--readers 1000] [--repeats 2]
        [--profile rank|mail|compose] [--batch-size 200] [--reuse-papers DB]

On a shared machine wall-clock rates say more about the neighbours than about the
code, so this measures ``time.process_time()`` (this process's CPU, every thread)
per digest, for the same scenario as benchmarks/delivery.py (its real papers and
readers, lexical ranking, PostgreSQL, postfix's ``smtp-sink``), stage by stage:

- ``rank``: :meth:`Runtime.rank_batch` over every chunk of the due deliveries but
  the first, which is timed apart (it builds the candidates, once per process);
- ``compose``: each ranked delivery's email composed by a fresh composer, nothing
  sent (the mail stage's load and compose without its SMTP exchange);
- ``mail``: :meth:`Runtime.mail_batch` over every chunk: claim, load, compose,
  send into ``smtp-sink``, record.

``--profile STAGE`` runs that stage under cProfile and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from config.settings import Settings
from delivery import (
    Databases,
    Environment,
    ensure_postfix_tools,
    prepare_papers,
    prepare_readers,
    smtp_sink,
)
from digest.clock import utcnow
from digest.db.unit_of_work import unit_of_work
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import claim_due_deliveries
from digest.delivery.mail_stage import load_mail_items, prepare
from digest.delivery.models import Delivery, DeliveryStatus
from digest.runtime import Runtime, chunks

STAGES = ("rank", "compose", "mail")


def timed(stage: str, profile: str | None, work: Callable[[], object]) -> float:
    """CPU seconds of ``work`` in this process, under cProfile when asked."""
    # CPU time, not wall: waits for the server or the database are not what we cut here.
    profiler = cProfile.Profile(time.process_time) if profile == stage else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    work()
    if profiler is not None:
        profiler.disable()
    spent = time.process_time() - started
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
    return spent


def peak_mb() -> float:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(
    settings: Settings, *, batch_size: int, profile: str | None
) -> tuple[dict[str, float], int]:
    runtime = Runtime(settings)
    try:
        now = utcnow()
        with unit_of_work(runtime.session_factory) as session:
            ids = claim_due_deliveries(session, now=now)
        spent: dict[str, float] = {}

        ranking = chunks(ids, batch_size)

        def first() -> None:
            runtime.rank_batch(ranking[0], now=now)

        rest: list[int] = []

        def rank() -> None:
            for chunk in ranking[1:]:
                rest.extend(runtime.rank_batch(chunk, now=now).ranked)

        # The first chunk builds the process's candidates (and imports the ranking's
        # libraries): a cost per process, apart from the cost per reader.
        spent["rank first chunk"] = timed("rank", None, first)
        spent["peak MB after the first chunk"] = peak_mb()
        spent["rank"] = timed("rank", profile, rank)
        # Per digest of the chunks after the first, like the other stages' per digest.
        spent["rank"] *= len(ids) / max(1, len(ids) - len(ranking[0]))
        with unit_of_work(runtime.session_factory) as session:
            ranked = list(
                session.scalars(
                    select(Delivery.id).where(
                        Delivery.id.in_(ids), Delivery.status == DeliveryStatus.RANKED
                    )
                )
            )

        def compose() -> None:
            # A composer of its own: the mail stage's starts as cold as in a new process.
            composer = DigestComposer(
                runtime.templates, runtime.links, runtime.site, runtime.bounces
            )
            for chunk in chunks(ranked, batch_size):
                with unit_of_work(runtime.session_factory) as session:
                    items = load_mail_items(session, chunk)
                for item in items:
                    prepare(item, composer=composer, now=now)

        spent["compose"] = timed("compose", profile, compose)
        # The composer above warmed nothing of the runtime's: the mail stage composes
        # with its own, as a new process would.

        def mail() -> None:
            for chunk in chunks(ranked, batch_size):
                runtime.mail_batch(chunk, now=now)

        spent["mail"] = timed("mail", profile, mail)
        spent["peak MB"] = peak_mb()
        return spent, len(ranked)
    finally:
        runtime.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", choices=STAGES)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--connections", type=int, default=1, help="SMTP sessions (send-due: 1)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--reuse-papers", metavar="DB", help="a papers database kept earlier")
    parser.add_argument("--keep-papers", action="store_true")
    args = parser.parse_args()
    ensure_postfix_tools()
    dbs = Databases(args.postgres)
    keep: list[str] = []
    with tempfile.TemporaryDirectory(prefix="digest-profile-delivery-") as name:
        folder = Path(name)
        ranking_file = folder / "ranking.toml"
        ranking_file.write_text('[relevance]\nsemantic = "off"\n')
        env = Environment(folder, "", 0, ranking_file=ranking_file)
        try:
            prep = prepare_papers(dbs, env, semantic=False, cold=False, reuse=args.reuse_papers)
            if args.keep_papers or args.reuse_papers:
                keep.append(prep.papers_db)
            template = prepare_readers(dbs, env, prep.papers_db, args.readers)
            per_digest: dict[str, list[float]] = {stage: [] for stage in STAGES}
            with smtp_sink(folder) as sink:
                for repeat in range(args.repeats):
                    db = dbs.create(f"profile{repeat}", template)
                    settings = Settings.from_values(
                        database_url=dbs.url(db),
                        smtp_url=f"smtp://127.0.0.1:{sink.port}",
                        smtp_connections=args.connections,
                        secret_key=env.secret_key,
                        ranking_file=ranking_file,
                        data_dir=folder / "data",
                        send_batch_size=args.batch_size,
                    )
                    profile = args.profile if repeat == args.repeats - 1 else None
                    spent, ranked = run_once(settings, batch_size=args.batch_size, profile=profile)
                    dbs.drop(db)
                    line = ", ".join(
                        f"{stage} {spent[stage] / ranked * 1000:.2f}" for stage in STAGES
                    )
                    line += (
                        f" (rank's first chunk: {spent['rank first chunk']:.2f}s); peak RSS "
                        f"{spent['peak MB after the first chunk']:.0f} MB after it, "
                        f"{spent['peak MB']:.0f} MB at the end"
                    )
                    print(
                        f"  #{repeat + 1}: {ranked:,} ranked of {args.readers:,}; "
                        f"CPU ms per digest: {line}",
                        flush=True,
                    )
                    for stage in STAGES:
                        per_digest[stage].append(spent[stage] / ranked * 1000)
            load = os.getloadavg()[0]
            medians = ", ".join(
                f"{stage} {statistics.median(values):.2f}" for stage, values in per_digest.items()
            )
            print(
                f"median CPU ms per digest ({args.readers:,} readers, load {load:.1f}): {medians}"
            )
        finally:
            dbs.drop_all(keep=keep)
    if keep:
        print(f"kept the papers database: --reuse-papers {keep[0]}")


if __name__ == "__main__":
    main()
