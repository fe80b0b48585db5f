"""`make demo` runs `digest demo`: the whole pipeline offline, twice."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from digest.mail.sink import read_eml
from tests.cli.commands import DIGEST


def demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [DIGEST, "demo", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
    )


def test_demo_sends_a_real_digest_once_and_says_so_the_second_time(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    first = demo(data_dir)
    assert first.returncode == 0, first.stderr
    assert "ingest  sample: 188 new" in first.stdout
    assert re.search(r"digest  \d{4}-\d\d-\d\d: sent, 5 papers, Message-ID <", first.stdout)
    eml = Path(re.search(r"^email   (\S+)$", first.stdout, re.M).group(1))  # type: ignore[union-attr]
    html = Path(re.search(r"^preview (\S+)", first.stdout, re.M).group(1))  # type: ignore[union-attr]

    message = read_eml(eml)
    assert message["To"] == "reader@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert 'href="http://127.0.0.1:8000/unsubscribe/' in page
    assert page.count('class="paper"') == 5
    # The demo reader's three interests each get a paper, named in its reason: the
    # sample's many NAS papers no longer crowd out "language models".
    for interest in ("diffusion", "language models", "neural architecture search"):
        assert f"matches: {interest}" in page
    # Then the edition's trending section, after the reader's own papers.
    assert page.index("Trending today") > page.rindex('class="paper"')
    assert (data_dir / "digest.db").exists()

    second = demo(data_dir)
    assert second.returncode == 0, second.stderr
    assert "ingest  sample: 0 new, 0 updated, 188 unchanged" in second.stdout
    assert "nothing new to send: reader@example.com already has today's digest" in second.stdout
    assert sorted((data_dir / "mail").glob("*.eml")) == [eml]


def test_demo_respects_an_unsubscribe_made_through_its_link(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from config.settings import Settings
    from digest.db.unit_of_work import unit_of_work
    from digest.demo import DEMO_EMAIL, demo_settings, run_demo
    from digest.runtime import Runtime
    from digest.subscriptions.subscribers import find_subscriber, unsubscribe

    settings = demo_settings(Settings.from_values(), tmp_path / "data")
    today = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert run_demo(settings, now=today).eml_path is not None
    runtime = Runtime(settings)
    with unit_of_work(runtime.session_factory) as session:
        reader = find_subscriber(session, DEMO_EMAIL)
        assert reader is not None
        unsubscribe(session, reader, now=today)
    runtime.dispose()

    tomorrow = run_demo(settings, now=today + timedelta(days=1))

    assert tomorrow.eml_path is None
    assert tomorrow.notes == [
        "nothing sent: reader@example.com is not an active subscriber any more "
        "(unsubscribed through its link?); edition 2026-11-22"
    ]
    assert len(list((tmp_path / "data" / "mail").glob("*.eml"))) == 1
