"""The installed ``digest`` command, run as a user runs it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.mail.sink import free_port
from tests.cli.commands import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def ingest_and_add_a_reader_due_now(env: dict[str, str], cwd: Path) -> None:
    assert run("ingest", env=env, cwd=cwd).returncode == 0
    added = run(
        "subscribers", "add", "ada@example.org", "--confirmed", "--send-hour", "0", env=env, cwd=cwd
    )
    assert added.returncode == 0, added.stderr


def test_add_and_list_subscribers(env: dict[str, str], tmp_path: Path) -> None:
    added = run(
        "subscribers",
        "add",
        " Ada@Example.ORG ",
        "--interests",
        "diffusion",
        "--confirmed",
        env=env,
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added ada@example.org (active)"
    run("subscribers", "add", "bob@example.org", env=env, cwd=tmp_path)

    listed = run("subscribers", "list", env=env, cwd=tmp_path)
    assert listed.stdout.splitlines() == [
        "ada@example.org\tactive\tdaily\t07:00 UTC\tdiffusion",
        "bob@example.org\tpending\tdaily\t07:00 UTC\t",
    ]
    pending = run("subscribers", "list", "--status", "pending", env=env, cwd=tmp_path)
    assert pending.stdout.splitlines() == ["bob@example.org\tpending\tdaily\t07:00 UTC\t"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["subscribers", "add", "not-an-address"], "error: invalid email address 'not-an-address'"),
        (
            ["subscribers", "add", "a@example.org", "--timezone", "Mars/Olympus"],
            "unknown time zone",
        ),
        (["ingest", "--source", "nowhere"], "error: unknown source 'nowhere'"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_failing_exit_code(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_adding_the_same_address_twice_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    run("subscribers", "add", "ada@example.org", env=env, cwd=tmp_path)
    again = run("subscribers", "add", "ADA@example.org", env=env, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == "error: ada@example.org is already subscribed"


def test_an_unreachable_database_is_reported_plainly(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing"
    result = run("subscribers", "list", env={"DIGEST_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the database:")
    assert "Traceback" not in result.stderr


def test_production_refuses_the_default_secret(tmp_path: Path) -> None:
    result = run("subscribers", "list", env={"DIGEST_ENVIRONMENT": "production"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "DIGEST_SECRET_KEY must be set" in result.stderr


def test_ingest_prints_a_summary_per_source(env: dict[str, str], tmp_path: Path) -> None:
    first = run("ingest", env=env, cwd=tmp_path)
    second = run("ingest", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("sample: 188 new, 0 updated, 0 unchanged, 0 skipped")
    assert second.stdout.startswith("sample: 0 new, 0 updated, 188 unchanged")


def test_ingest_takes_a_feed_dropped_on_disk(env: dict[str, str], tmp_path: Path) -> None:
    feed = tmp_path / "takara.xml"
    feed.write_bytes(
        (FIXTURES / "third_party_feeds/takara_tldr_papers_rss_2026-04-30_50items.xml").read_bytes()
    )
    first = run("ingest", "--source", str(feed), env=env, cwd=tmp_path)
    again = run("ingest", "--source", feed.as_uri(), env=env, cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("feed: 50 new, 0 updated, 0 unchanged, 0 skipped")
    # Same file, same modification time: not read again.
    assert again.returncode == 0, again.stderr
    assert "not modified since the last fetch" in again.stdout


def test_a_broken_sources_file_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text('[sources.x]\nkind = "pigeon"\n')
    result = run(
        "ingest",
        env={**env, "DIGEST_SOURCES": "", "DIGEST_SOURCES_FILE": str(sources)},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: [sources.x] kind 'pigeon' is not one of")


def test_send_due_sends_in_process_without_a_broker(env: dict[str, str], tmp_path: Path) -> None:
    from digest.mail.sink import SmtpSink

    ingest_and_add_a_reader_due_now(env, tmp_path)
    with SmtpSink(tmp_path / "mail") as sink:
        sent = run("send-due", env={**env, "DIGEST_SMTP_URL": sink.url}, cwd=tmp_path)
        again = run("send-due", env={**env, "DIGEST_SMTP_URL": sink.url}, cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "1 digest(s) were due and have been processed"
        assert again.stdout.strip() == "0 digest(s) were due and have been processed"
        assert [m["To"] for m in sink.messages()] == ["ada@example.org"]


@pytest.fixture
def postgres_env(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    from tests.services import fresh_postgres_database

    with fresh_postgres_database("digest_cli") as url:
        values = {**env, "DIGEST_DATABASE_URL": url}
        assert run("db", "upgrade", env=values, cwd=tmp_path).returncode == 0
        yield values


@pytest.mark.services
def test_send_due_in_two_processes_sends_each_due_reader_one_digest(
    postgres_env: dict[str, str], tmp_path: Path
) -> None:
    from digest.mail.sink import SmtpSink

    env = postgres_env

    readers = [f"reader{n}@example.org" for n in range(12)]
    listing = tmp_path / "readers.csv"
    listing.write_text(
        "email,interests,send_hour\n" + "".join(f"{r},diffusion,0\n" for r in readers)
    )
    assert run("ingest", env=env, cwd=tmp_path).returncode == 0
    imported = run("subscribers", "import", str(listing), "--confirmed", env=env, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    # Four chunks of three: the two processes share them.
    settings = {**env, "DIGEST_SEND_BATCH_SIZE": "3"}
    with SmtpSink(tmp_path / "mail") as sink:
        sent = run(
            "send-due",
            "--processes",
            "2",
            env={**settings, "DIGEST_SMTP_URL": sink.url},
            cwd=tmp_path,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.strip() == "12 digest(s) were due and have been processed in 2 processes"
        assert sorted(m["To"] for m in sink.messages()) == sorted(readers)
        # Nothing left behind for the next run: every delivery was settled.
        again = run("send-due", env={**settings, "DIGEST_SMTP_URL": sink.url}, cwd=tmp_path)
        assert again.stdout.strip() == "0 digest(s) were due and have been processed"
        assert len(sink.messages()) == 12


def test_send_due_on_sqlite_refuses_processes(env: dict[str, str], tmp_path: Path) -> None:
    result = run("send-due", "--processes", "2", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --processes needs PostgreSQL")


def test_send_due_with_a_broker_refuses_processes(env: dict[str, str], tmp_path: Path) -> None:
    result = run(
        "send-due",
        "--processes",
        "2",
        env={**env, "DIGEST_BROKER_URL": "redis://127.0.0.1:6379/15"},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: --processes is for sending without a broker")


def test_send_due_with_smtp_down_says_the_digests_stay_queued_and_fails(
    env: dict[str, str], tmp_path: Path
) -> None:
    from digest.mail.sink import SmtpSink

    ingest_and_add_a_reader_due_now(env, tmp_path)
    port = free_port()
    down = run("send-due", env={**env, "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}"}, cwd=tmp_path)
    assert down.returncode == 75, down.stdout + down.stderr
    assert down.stderr.strip() == (
        "error: 1 digest(s) could not be sent now (SMTP unavailable): they stay queued; "
        "run send-due again"
    )
    with SmtpSink(tmp_path / "mail", port=port) as sink:
        again = run("send-due", env={**env, "DIGEST_SMTP_URL": sink.url}, cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [m["To"] for m in sink.messages()] == ["ada@example.org"]


def test_worker_refuses_an_unknown_queue(tmp_path: Path) -> None:
    result = run(
        "worker",
        "--queues",
        "rank,post",
        env={"DIGEST_BROKER_URL": "redis://127.0.0.1:1/0"},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "unknown queue(s) post" in result.stderr


def test_worker_without_a_broker_says_what_is_missing(tmp_path: Path) -> None:
    result = run("worker", env={"DIGEST_BROKER_URL": ""}, cwd=tmp_path)
    assert result.returncode == 1
    assert "DIGEST_BROKER_URL is not set" in result.stderr


def test_export_then_import_moves_subscribers_to_a_new_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    for args in (
        ["ada@example.org", "--confirmed", "--interests", "diffusion, LLMs", "--send-hour", "18"],
        ["bob@example.org", "--frequency", "weekly", "--timezone", "Asia/Tokyo", "--papers", "9"],
    ):
        assert run("subscribers", "add", *args, env=env, cwd=tmp_path).returncode == 0
    exported = run("subscribers", "export", "--output", "out.csv", env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.strip() == "2 subscriber(s) exported"
    new_env = {**env, "DIGEST_DATA_DIR": str(tmp_path / "new")}
    assert run("db", "upgrade", env=new_env, cwd=tmp_path).returncode == 0

    imported = run("subscribers", "import", "out.csv", env=new_env, cwd=tmp_path)

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported 2, skipped 0 existing, 0 invalid"
    # Everything but the timestamps and status (pending: imported without --confirmed).
    old, new = (
        [
            {k: v for k, v in row.items() if k not in ("status", "created_at", "confirmed_at")}
            for row in csv.DictReader(io.StringIO(result.stdout, newline=""))
        ]
        for result in (
            run("subscribers", "export", env=env, cwd=tmp_path),
            run("subscribers", "export", env=new_env, cwd=tmp_path),
        )
    )
    assert new == old
    assert len(new) == 2
    listed = run("subscribers", "list", env=new_env, cwd=tmp_path)
    assert [line.split("\t")[1] for line in listed.stdout.splitlines()] == ["pending", "pending"]


def test_import_reports_bad_rows_by_line_and_imports_the_rest(
    env: dict[str, str], tmp_path: Path
) -> None:
    run("subscribers", "add", "ada@example.org", env=env, cwd=tmp_path)
    (tmp_path / "in.csv").write_text(
        "email,send_hour\nADA@example.org,9\nnot-an-address,\nbob@example.org,25\ncy@example.org,8\n"
    )

    result = run("subscribers", "import", "in.csv", "--confirmed", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout.strip() == "imported 1, skipped 1 existing, 2 invalid"
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["line 3", "line 4"]
    listed = run("subscribers", "list", env=env, cwd=tmp_path)
    assert listed.stdout.splitlines() == [
        "ada@example.org\tpending\tdaily\t07:00 UTC\t",
        "cy@example.org\tactive\tdaily\t08:00 UTC\t",
    ]


def test_import_of_an_unreadable_file_is_one_clear_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = run("subscribers", "import", "missing.csv", env=env, cwd=tmp_path)
    (tmp_path / "bad.csv").write_text("mail\nada@example.org\n")
    bad_header = run("subscribers", "import", "bad.csv", env=env, cwd=tmp_path)

    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "error: cannot read missing.csv: No such file or directory",
    )
    assert bad_header.returncode == 2
    assert bad_header.stderr.startswith("error: unknown column(s) 'mail' in the header")
    assert len(bad_header.stderr.strip().splitlines()) == 1


def test_counts_shows_every_status(env: dict[str, str], tmp_path: Path) -> None:
    run("subscribers", "add", "ada@example.org", "--confirmed", env=env, cwd=tmp_path)
    run("subscribers", "add", "bob@example.org", env=env, cwd=tmp_path)
    run("subscribers", "add", "cy@example.org", env=env, cwd=tmp_path)

    result = run("subscribers", "counts", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "pending\t2",
        "active\t1",
        "paused\t0",
        "unsubscribed\t0",
        "bounced\t0",
    ]
    assert result.stderr.strip() == "3 subscriber(s)"


def test_links_prints_working_links_for_support(env: dict[str, str], tmp_path: Path) -> None:
    from digest.subscriptions.tokens import Purpose, Signer

    env = {**env, "DIGEST_SECRET_KEY": "cli-links-secret", "DIGEST_BASE_URL": "https://d.example"}
    run("subscribers", "add", "ada@example.org", "--confirmed", env=env, cwd=tmp_path)

    result = run("subscribers", "links", "Ada@Example.org", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    (label1, preferences), (label2, unsubscribe) = (
        line.split() for line in result.stdout.splitlines()
    )
    assert (label1, label2) == ("preferences", "unsubscribe")
    signer = Signer("cli-links-secret")
    prefix = "https://d.example/preferences/"
    assert preferences.startswith(prefix)
    assert signer.verify(Purpose.PREFERENCES, preferences.removeprefix(prefix)).subscriber_id == 1
    prefix = "https://d.example/unsubscribe/"
    assert unsubscribe.startswith(prefix)
    assert signer.verify(Purpose.UNSUBSCRIBE, unsubscribe.removeprefix(prefix)).subscriber_id == 1


def test_links_for_an_unknown_address_fails_plainly(env: dict[str, str], tmp_path: Path) -> None:
    result = run("subscribers", "links", "nobody@example.org", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "error: no subscriber with the address nobody@example.org"
