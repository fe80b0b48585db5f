"""Subscription notices as a mail system receives them: headers, envelope, content."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from config.settings import Settings
from digest.mail.bounces import BounceKind
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.subscriptions.subscribers import Notice
from tests.factories import NOW, make_subscriber_for_notice


@pytest.mark.parametrize("notice", list(Notice))
def test_a_notice_is_marked_automatic_and_bounces_to_its_own_signed_address(
    session: Session,
    make_settings: Callable[..., Settings],
    smtp_sink: SmtpSink,
    notice: Notice,
) -> None:
    runtime = Runtime(
        make_settings(smtp_url=smtp_sink.url, reply_to="help@example.org", feedback_sender_id="lab")
    )
    reader = make_subscriber_for_notice(session, notice)
    message = runtime.notices.compose(session, notice, reader.id, now=NOW)
    assert message is not None
    with runtime.sender.connection() as connection:
        connection.send(message)

    [received] = smtp_sink.messages()
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Reply-To"] == "help@example.org"
    assert received["Feedback-ID"] == f"notice:{notice.value}:digest:lab"
    # The envelope sender, as the receiving system records it.
    return_path = received["Return-Path"].strip("<>")
    assert return_path.startswith(f"bounces+n{reader.id}-")
    target = runtime.bounces.read(return_path)
    assert target is not None and (target.kind, target.id) == (BounceKind.NOTICE, reader.id)
