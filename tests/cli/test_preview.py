"""``digest preview``: what the ranker would pick, for typed interests or a subscriber,
run as an operator runs it over the ingested sample."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from digest.db.engine import make_engine, make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.papers.models import Paper
from digest.subscriptions.models import Subscriber
from tests.cli.commands import lexical_ranking_file, run


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the sample ingested once; each test works on a copy."""
    folder = tmp_path_factory.mktemp("preview")
    values = {"DIGEST_DATA_DIR": str(folder / "data"), "DIGEST_SOURCES": "sample"}
    assert run("db", "upgrade", env=values, cwd=folder).returncode == 0
    result = run("ingest", "--source", "sample", env=values, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sample: 188 new")
    return folder / "data" / "digest.db"


@pytest.fixture
def sample(ingested: Path, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "data").mkdir()
    shutil.copyfile(ingested, tmp_path / "data" / "digest.db")
    return {
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SOURCES": "sample",
        "DIGEST_RANKING_FILE": lexical_ranking_file(tmp_path),
    }


def preview(sample: dict[str, str], cwd: Path, *args: str) -> list[dict[str, Any]]:
    result = run("preview", *args, "--json", env=sample, cwd=cwd)
    assert result.returncode == 0, result.stderr
    picks: list[dict[str, Any]] = json.loads(result.stdout)["picks"]
    return picks


def database(sample: dict[str, str]) -> Engine:
    return make_engine(f"sqlite:///{Path(sample['DIGEST_DATA_DIR']) / 'digest.db'}")


def test_preview_lists_the_best_matches_with_their_reasons(
    sample: dict[str, str], tmp_path: Path
) -> None:
    picks = preview(sample, tmp_path, "--interests", "image editing", "--top", "3")

    assert len(picks) == 3
    for pick in picks:
        assert {"id", "title", "score", "reason"} <= set(pick)
        assert pick["id"].startswith("seed:") and pick["title"]
        assert pick["reason"].startswith("matches: image editing")
    scores = [pick["score"] for pick in picks]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_preview_without_json_prints_one_numbered_pick_with_its_reason_below(
    sample: dict[str, str], tmp_path: Path
) -> None:
    result = run("preview", "--interests", "image editing", "--top", "2", env=sample, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 + 2 + 2 * 3
    assert lines[0].startswith("  1. seed:") and lines[2].startswith("  2. seed:")
    assert lines[1].strip().startswith("matches: image editing")
    # Then, as the digest ends, the three most trending papers that are not those two.
    assert lines[4:6] == ["", "Trending today"]
    assert all(line.startswith("  -  seed:") for line in lines[6::2])
    picked = {lines[0].split()[1], lines[2].split()[1]}
    assert not picked & {line.split()[1] for line in lines[6::2]}


def test_since_widens_the_window_to_older_papers(sample: dict[str, str], tmp_path: Path) -> None:
    [best] = preview(sample, tmp_path, "--interests", "image editing", "--top", "1")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    engine = database(sample)
    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(
            update(Paper).where(Paper.canonical_id == best["id"]).values(first_seen_at=long_ago)
        )
    engine.dispose()

    recent = preview(sample, tmp_path, "--interests", "image editing", "--top", "10")
    since = (long_ago - timedelta(days=1)).date().isoformat()
    widened = preview(
        sample, tmp_path, "--interests", "image editing", "--top", "10", "--since", since
    )

    assert best["id"] not in [p["id"] for p in recent]
    assert best["id"] in [p["id"] for p in widened]


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "20/11/2026"])
def test_a_bad_since_is_one_clear_line(sample: dict[str, str], tmp_path: Path, since: str) -> None:
    result = run("preview", "--since", since, env=sample, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: --since {since!r} is not a date like 2026-11-20"


def test_an_unknown_subscriber_is_one_clear_line(sample: dict[str, str], tmp_path: Path) -> None:
    result = run("preview", "--email", "Nobody@Example.org", env=sample, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "error: no subscriber with the address nobody@example.org"


def test_an_invalid_address_is_one_clear_line(sample: dict[str, str], tmp_path: Path) -> None:
    result = run("preview", "--email", "not an address", env=sample, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_subscriber_gets_their_profile_without_what_they_were_sent(
    sample: dict[str, str], tmp_path: Path
) -> None:
    added = run(
        "subscribers",
        "add",
        "ada@example.org",
        "--interests",
        "image editing",
        "--confirmed",
        env=sample,
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    typed = preview(sample, tmp_path, "--interests", "image editing", "--top", "4")

    # Their interests, not the (empty) typed ones.
    theirs = preview(sample, tmp_path, "--email", "ADA@example.org", "--top", "4")
    assert [p["id"] for p in theirs] == [p["id"] for p in typed]
    assert all(p["reason"].startswith("matches: image editing") for p in theirs)

    engine = database(sample)
    with unit_of_work(make_session_factory(engine)) as session:
        reader = session.scalars(select(Subscriber)).one()
        ids = {
            cid: pid
            for pid, cid in session.execute(
                select(Paper.id, Paper.canonical_id).where(
                    Paper.canonical_id.in_([typed[0]["id"], typed[1]["id"]])
                )
            )
        }
        now = datetime.now(UTC)
        for edition, status, cid in (
            ("2026-11-20", DeliveryStatus.SENT, typed[0]["id"]),
            # A digest that failed never reached the reader: its paper may still come.
            ("2026-11-21", DeliveryStatus.FAILED, typed[1]["id"]),
        ):
            delivery = Delivery(
                subscriber_id=reader.id, edition=edition, status=status, created_at=now
            )
            delivery.papers = [DeliveryPaper(paper_id=ids[cid], position=0, reason="")]
            session.add(delivery)
    engine.dispose()

    after = [p["id"] for p in preview(sample, tmp_path, "--email", "ada@example.org", "--top", "4")]

    assert typed[0]["id"] not in after
    assert after[:3] == [p["id"] for p in typed[1:]]


def test_a_bad_ranking_file_is_one_clear_line(sample: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[trending]\nhalf_life_hours = 0\n", encoding="utf-8")
    result = run("preview", env={**sample, "DIGEST_RANKING_FILE": str(broken)}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: ranking file {broken}: trending.half_life_hours: should be greater than 0"
    )


def test_json_stays_the_picks_and_trending_prints_the_section(
    sample: dict[str, str], tmp_path: Path
) -> None:
    asked = ("--interests", "diffusion, language models, neural architecture search", "--top", "5")
    result = run("preview", *asked, "--json", env=sample, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    # The same document as before the trending section: the picks, in digest order.
    assert set(document) == {"picks", "note"} and len(document["picks"]) == 5
    picks = document["picks"]
    # The demo reader's three interests are each served first, and named.
    assert {p["reason"].split(" · ")[0].split(", ")[0] for p in picks[:3]} == {
        "matches: diffusion",
        "matches: language models",
        "matches: neural architecture search",
    }

    section = run("preview", *asked, "--trending", env=sample, cwd=tmp_path)
    assert section.returncode == 0, section.stderr
    trending = json.loads(section.stdout)
    assert len(trending) == 3 and all({"id", "title", "reason"} <= set(p) for p in trending)
    assert not {p["id"] for p in trending} & {p["id"] for p in picks}

    ranking = tmp_path / "off.toml"
    ranking.write_text(
        '[relevance]\nsemantic = "off"\n[selection]\ntrending_section_size = 0\n', encoding="utf-8"
    )
    off = {**sample, "DIGEST_RANKING_FILE": str(ranking)}
    assert json.loads(run("preview", *asked, "--trending", env=off, cwd=tmp_path).stdout) == []
    printed = run("preview", *asked, env=off, cwd=tmp_path)
    assert printed.returncode == 0 and "Trending" not in printed.stdout


def test_a_readers_own_papers_from_bibtex_lead_their_preview(
    sample: dict[str, str], tmp_path: Path
) -> None:
    # Titles only (the sample has no arXiv ids), so nothing is asked of arXiv.
    (tmp_path / "mine.bib").write_text(
        "@inproceedings{cai2019,\n"
        "  title = {{ProxylessNAS}: Direct Neural Architecture Search on Target Task"
        " and Hardware},\n"
        "  booktitle = {ICLR},\n}\n"
        "@article{broken, title = {Never closed\n"
        "@article{unknown, title = {A Paper Nobody Ingested}}\n",
        encoding="utf-8",
    )

    added = run(
        "subscribers",
        "add",
        "ada@example.org",
        "--confirmed",
        "--papers-from",
        "mine.bib",
        env=sample,
        cwd=tmp_path,
    )

    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        "added ada@example.org (active)",
        "1 paper(s) added to your references",
        "1 not found: line 6 “A Paper Nobody Ingested”",
        "not understood: line 5: BibTeX entry not understood (a “{” is never closed)",
    ]
    run("subscribers", "add", "bob@example.org", "--confirmed", env=sample, cwd=tmp_path)
    picks = preview(sample, tmp_path, "--email", "ada@example.org", "--top", "10")
    trending = preview(sample, tmp_path, "--email", "bob@example.org", "--top", "10")
    theirs = [p["title"].split(":")[0] for p in picks]
    overall = [p["title"].split(":")[0] for p in trending]

    # Bob, with no interests, gets the trending list; Ada's own paper lifts another
    # architecture-search paper (by the same group) into her first picks...
    assert "Once-for-All" in theirs[:2] and "Once-for-All" not in overall
    # ...and her own paper, though in the overall list, is no news to her.
    assert "ProxylessNAS" in overall and "ProxylessNAS" not in theirs

    again = run("subscribers", "library", "ada@example.org", "mine.bib", env=sample, cwd=tmp_path)
    assert again.returncode == 1  # entries not found or not understood
    assert again.stdout.splitlines()[0] == "0 paper(s) added to your references, 1 already there"
    unknown = run(
        "subscribers", "library", "cy@example.org", "2401.01234", env=sample, cwd=tmp_path
    )
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        "error: no subscriber cy@example.org",
    )
