"""Every email type as SpamAssassin scores it: Debian's ``spamassassin`` with its shipped
rules, local tests only (``-L``: no DNS, no network). ``.ci/run`` installs it, so CI
always runs these; elsewhere a machine without it skips them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from config.settings import Settings
from digest.mail.outgoing import OutgoingMessage
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import Notice
from tests.factories import NOW, make_subscriber
from tests.samples import full_papers

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = [
    pytest.mark.skipif(
        SPAMASSASSIN is None and not os.environ.get("CI"),
        reason="needs Debian's spamassassin (apt-get install spamassassin; .ci/run installs it)",
    ),
    # One backend is enough: a notice only reads its subscriber.
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]
MAX_SCORE = 1.0
# What the hidden preheader (text coloured like its background, 1 px) used to fire.
HIDDEN_TEXT_RULES = {"HTML_FONT_LOW_CONTRAST", "FONT_INVIS_MSGID"}


def spam_report(data: bytes, home: Path) -> tuple[float, set[str]]:
    """The score and the rules that fired, as ``spamassassin -t -L`` reports them."""
    assert SPAMASSASSIN is not None, "CI installs spamassassin (.ci/run)"
    result = subprocess.run(
        [SPAMASSASSIN, "-t", "-L"],
        input=data,
        capture_output=True,
        check=True,
        timeout=120,
        # It writes per-user preferences under $HOME/.spamassassin: the test's own.
        env={**os.environ, "HOME": str(home)},
    )
    checked = message_from_bytes(result.stdout, policy=policy.default)
    # "No, score=-0.0 required=5.0 tests=HTML_MESSAGE,NO_RECEIVED,\n\tNO_RELAYS autolearn=…"
    status = " ".join(str(checked["X-Spam-Status"]).split())
    score = re.search(r"\bscore=(-?[0-9.]+)", status)
    tests = re.search(r"\btests=((?:[A-Z0-9_]+(?:, ?)?)*)", status)
    assert score is not None and tests is not None, status
    rules = {rule.strip() for rule in tests.group(1).split(",") if rule.strip()}
    return float(score.group(1)), rules


def digest(runtime: Runtime, paper_count: int) -> OutgoingMessage:
    reader = Subscriber(
        id=7, email="reader@example.com", interests="diffusion models", token_version=1
    )
    picks = [
        Pick(paper=paper, reason="matches: diffusion" if n % 2 else "", upvotes=None)
        for n, paper in enumerate(full_papers(paper_count))
    ]
    return runtime.composer.compose(
        reader, picks, delivery_id=77, edition="2026-11-21", now=NOW
    ).outgoing


def notice(runtime: Runtime, session: Session, kind: Notice) -> OutgoingMessage:
    if kind == Notice.CONFIRM:
        reader = make_subscriber(session, status=SubscriberStatus.PENDING, confirmed_at=None)
    elif kind == Notice.CONFIRM_EMAIL_CHANGE:
        reader = make_subscriber(session, pending_email="new-address@example.com")
    else:
        reader = make_subscriber(session)
    message = runtime.notices.compose(session, kind, reader.id, now=NOW)
    assert message is not None
    return message


def email_of(kind: str, runtime: Runtime, session: Session) -> OutgoingMessage:
    if kind == "notice address_in_use":
        # An address change to an address already on file: its owner is told instead.
        owner = make_subscriber(session)
        reader = make_subscriber(session, pending_email=owner.email)
        message = runtime.notices.compose(session, Notice.CONFIRM_EMAIL_CHANGE, reader.id, now=NOW)
        assert message is not None
        return message
    if kind.startswith("digest of "):
        return digest(runtime, int(kind.split()[2]))
    return notice(runtime, session, Notice(kind.removeprefix("notice ")))


EMAILS = [
    "digest of 1 paper",
    "digest of 10 papers",
    "digest of 50 papers",
    *(f"notice {kind.value}" for kind in Notice),
    "notice address_in_use",
]


@pytest.mark.parametrize("email", EMAILS)
def test_every_email_type_scores_at_most_one_point_with_no_hidden_text(
    session: Session, make_settings: Callable[..., Settings], tmp_path: Path, email: str
) -> None:
    runtime = Runtime(make_settings(from_address="Digest <digest@example.com>"))
    message = email_of(email, runtime, session)

    score, rules = spam_report(message.data, tmp_path)

    assert score <= MAX_SCORE, f"{email}: {score} points from {sorted(rules)}"
    assert not rules & HIDDEN_TEXT_RULES
