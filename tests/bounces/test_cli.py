"""The operator's commands about bounced readers, run as a user runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from config.settings import Settings
from digest.bounces.events import EventKind, MailEvent
from digest.db.unit_of_work import unit_of_work
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from tests.cli.commands import lexical_ranking_file, run
from tests.factories import NOW, make_subscriber


def test_a_bounced_reader_is_listed_with_why_and_re_added_only_through_opt_in(
    tmp_path: Path, make_settings: Callable[..., Settings], smtp_sink: SmtpSink
) -> None:
    env = {
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SOURCES": "sample",
        "DIGEST_RANKING_FILE": lexical_ranking_file(tmp_path),
        "DIGEST_SMTP_URL": smtp_sink.url,
    }
    assert run("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    runtime = Runtime(make_settings(data_dir=tmp_path / "data"))
    try:
        with unit_of_work(runtime.session_factory) as session:
            make_subscriber(session, email="gone@example.org", interests="optics")
            make_subscriber(session, email="fine@example.org", interests="optics")
        runtime.record_mail_events(
            [
                MailEvent(
                    EventKind.HARD_BOUNCE,
                    "smtp",
                    NOW,
                    "gone@example.org",
                    status="5.1.1",
                    reason="<gone@example.org>: Recipient address rejected: User unknown",
                    raw="550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
                )
            ],
            now=NOW + timedelta(seconds=1),
        )
    finally:
        runtime.dispose()

    listed = run("subscribers", "list", "--status", "bounced", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "gone@example.org\tbounced\tdaily\t07:00 UTC\toptics\thard_bounce 5.1.1 via smtp on "
        "2026-11-21: <gone@example.org>: Recipient address rejected: User unknown"
    ]

    confirmed = run("subscribers", "add", "gone@example.org", "--confirmed", env=env, cwd=tmp_path)
    assert confirmed.returncode == 2
    assert "without --confirmed" in confirmed.stderr
    assert smtp_sink.messages() == []

    again = run(
        "subscribers",
        "add",
        "gone@example.org",
        "--interests",
        "lasers",
        "--send-hour",
        "6",
        env=env,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "pending again" in again.stdout and "confirmation email sent" in again.stdout
    [confirmation] = smtp_sink.messages()
    assert confirmation["To"] == "gone@example.org" and "Confirm" in confirmation["Subject"]
    pending = run("subscribers", "list", "--status", "pending", env=env, cwd=tmp_path)
    assert pending.stdout.splitlines() == ["gone@example.org\tpending\tdaily\t06:00 UTC\tlasers"]
