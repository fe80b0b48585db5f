"""Starting a process that does not rank costs no machine-learning imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from digest.db.engine import make_engine
from digest.db.migrate import upgrade

HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn")
# What a process that only mails has no use for: the ranking and its array libraries
# (30 MB in every prefork child of a mail worker, which starts from its parent's
# imports), ingest's HTTP, HTML and LaTeX libraries.
RANKING_AND_INGEST = ("numpy", "scipy", "digest.ranking.ranker", "digest.papers.ingest", "httpx")

PROGRAM = f"""
import sys
import digest.cli.main, workers.tasks, digest.web.app
from config.settings import Settings
from digest.web.app import create_app
from workers.app import create_celery

settings = Settings.from_values(secret_key="imports-test", sources="sample")
create_app(settings)
create_celery(settings)
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_cli_web_app_and_worker_tasks_import_no_model_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""


MAIL_PROGRAM = f"""
import sys
from pathlib import Path
from config.settings import Settings
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries, mark_ranked
from digest.delivery.models import DeliveryPaper
from digest.mail.sink import SmtpSink
from tests.factories import make_paper, make_subscriber
from workers.app import create_celery

workdir = Path(sys.argv[1])
with SmtpSink(workdir / "mail") as sink:
    settings = Settings.from_values(
        secret_key="imports-test", sources="sample", data_dir=workdir, smtp_url=sink.url
    )
    app = create_celery(settings)
    upgrade(app.runtime.engine)
    with unit_of_work(app.runtime.session_factory) as session:
        paper = make_paper(session)
        make_subscriber(session, send_hour=0)
        [delivery_id] = claim_due_deliveries(session, now=paper.first_seen_at)
        # As the rank stage leaves it: picks stored, status ranked.
        session.add(
            DeliveryPaper(delivery_id=delivery_id, paper_id=paper.id, position=0, reason="r")
        )
        mark_ranked(session, [(delivery_id, None)], now=paper.first_seen_at)
    counts = app.tasks["digest.mail"].delay([delivery_id]).get()
    assert counts == {{"sent": 1}}, counts
    assert len(sink.files()) == 1
print(",".join(m for m in {(*HEAVY, *RANKING_AND_INGEST)!r} if m in sys.modules))
"""


def test_the_mail_stage_sends_without_the_ranking_or_model_libraries(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MAIL_PROGRAM, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


RANK_PROGRAM = f"""
import sys
from pathlib import Path
from config.settings import Settings
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries
from tests.factories import make_paper, make_subscriber
from workers.app import create_celery

workdir = Path(sys.argv[1])
(workdir / "ranking.toml").write_text('[relevance]\\nsemantic = "off"\\n')
settings = Settings.from_values(
    secret_key="imports-test",
    sources="sample",
    data_dir=workdir,
    ranking_file=workdir / "ranking.toml",
    smtp_url="smtp://127.0.0.1:9",
)
app = create_celery(settings)
upgrade(app.runtime.engine)
with unit_of_work(app.runtime.session_factory) as session:
    paper = make_paper(session, title="Diffusion models for the rest of us")
    make_subscriber(session, send_hour=0, interests="diffusion models, for the rest")
    ids = claim_due_deliveries(session, now=paper.first_seen_at)
ranked = app.runtime.rank_batch(ids, now=paper.first_seen_at)
assert ranked.counts() == {{"ranked": 1, "skipped": 0, "failed": 0}}, ranked.counts()
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_ranking_reads_interests_without_scikit_learn(tmp_path: Path) -> None:
    # Its stop words are copied (digest/ranking/stop_words.py): importing
    # scikit-learn for them cost each ranking process 0.8 s and 68 MB.
    result = subprocess.run(
        [sys.executable, "-c", RANK_PROGRAM, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


HELP_PROGRAM = """
import sys
from digest.cli.main import main
sys.argv = ["digest", "--help"]
try:
    main()
except SystemExit:
    pass
loaded = [m for m in ("sqlalchemy", "pydantic", "celery", "config.settings") if m in sys.modules]
ours = (m for m in sys.modules if m.startswith("digest.") and not m.startswith("digest.cli"))
loaded += sorted(ours)
print(",".join(loaded), file=sys.stderr)
"""


def test_digest_help_loads_typer_only() -> None:
    # `digest --help` took 1.5 s when every command module imported the domain at the top.
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert "Usage: digest" in result.stdout
    # The option declarations read the reader's choices (plain enums), nothing else.
    assert result.stderr.strip() == "digest.subscriptions,digest.subscriptions.choices"


IMPORT_PROGRAM = """
import sys
from digest.cli.main import main
sys.argv = ["digest", "subscribers", "import", sys.argv[1], "--confirmed"]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(",".join(m for m in ("digest.runtime", "numpy", "digest.mail") if m in sys.modules))
"""


def test_subscribers_import_loads_the_database_and_no_pipeline(tmp_path: Path) -> None:
    # Building a Runtime imported ranking, mail and sources: a second before the
    # first row of an import that takes a few.
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    (tmp_path / "in.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    env = {**os.environ, "DIGEST_DATABASE_URL": url, "DIGEST_SECRET_KEY": "imports-test"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROGRAM, str(tmp_path / "in.csv")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["imported 1, skipped 0 existing, 0 invalid", ""]
