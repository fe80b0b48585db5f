"""Bulk sending: several messages in flight over a pool of SMTP sessions, paced,
streaming results, one message's failure its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from digest.mail.outgoing import OutgoingMessage
from digest.mail.pool import SendPool, SendResult
from digest.mail.sender import SendError
from digest.mail.smtp import SmtpConfig, SmtpSender
from tests.mail.scripted import ScriptedServer


def message(recipient: str) -> OutgoingMessage:
    data = (
        f"From: digest@example.org\r\nTo: {recipient}\r\nSubject: papers\r\n"
        f"Message-ID: <{recipient}>\r\n\r\n" + "a line of the digest\r\n" * 50
    ).encode()
    return OutgoingMessage(
        sender="digest@example.org", recipient=recipient, message_id=f"<{recipient}>", data=data
    )


def readers(count: int, prefix: str = "reader") -> list[OutgoingMessage]:
    return [message(f"{prefix}{n}@example.org") for n in range(count)]


def sender(server: ScriptedServer, query: str = "") -> SmtpSender:
    return SmtpSender(SmtpConfig.from_url(server.url + query, timeout=10))


def send_many(
    server_sender: SmtpSender, messages: list[OutgoingMessage]
) -> dict[str, SendError | None]:
    results: dict[str, SendError | None] = {}

    def record(sent: OutgoingMessage, error: SendError | None) -> None:
        results[sent.recipient] = error

    server_sender.send_many(messages, record)
    return results


def test_several_messages_are_in_flight_at_once_each_on_its_own_session(
    smtp_server: ScriptedServer,
) -> None:
    # Each DATA waits until four are in DATA together: fewer in flight fails them.
    smtp_server.handler.hold = 4
    results = send_many(sender(smtp_server, "?connections=4"), readers(8))

    assert results == {m.recipient: None for m in readers(8)}
    assert smtp_server.handler.most_in_data == 4
    # Four sessions, each reused for the next message.
    assert len(smtp_server.peers()) == 4
    assert smtp_server.accepted() == sorted(m.recipient for m in readers(8))


def test_no_more_in_flight_than_connections(smtp_server: ScriptedServer) -> None:
    send_many(sender(smtp_server, "?connections=2"), readers(10))
    assert smtp_server.handler.most_in_data <= 2
    assert len(smtp_server.peers()) <= 2
    assert len(smtp_server.accepted()) == 10


def test_the_rate_limit_holds(smtp_server: ScriptedServer) -> None:
    count, rate = 12, 20.0
    start = time.perf_counter()
    results = send_many(sender(smtp_server, f"?connections=4&rate={rate:g}"), readers(count))
    elapsed = time.perf_counter() - start

    assert all(error is None for error in results.values())
    # Starts are 1/rate apart, the first at once; only a lower bound is safe to
    # assert on a busy machine.
    assert elapsed >= (count - 1) / rate * 0.99


def test_a_refusal_fails_that_message_only(smtp_server: ScriptedServer) -> None:
    batch = [*readers(3, "a"), message("gone@example.org"), *readers(3, "b")]
    results = send_many(sender(smtp_server, "?connections=2"), batch)

    error = results.pop("gone@example.org")
    assert error is not None and error.permanent and error.code == 550
    assert "550 5.1.1 No such user" in str(error)
    assert results == {m.recipient: None for m in batch if m.recipient != "gone@example.org"}
    assert len(smtp_server.accepted()) == 6


def test_a_421_is_transient_and_the_others_go_on_a_new_session(
    smtp_server: ScriptedServer,
) -> None:
    batch = [*readers(2, "a"), message("busy1@example.org"), *readers(2, "b")]
    batch.insert(1, message("busy2@example.org"))
    results = send_many(sender(smtp_server, "?connections=2"), batch)

    for busy in ("busy1@example.org", "busy2@example.org"):
        error = results.pop(busy)
        assert error is not None and not error.permanent and error.code == 421
    assert results == {m.recipient: None for m in batch if not m.recipient.startswith("busy")}
    assert len(smtp_server.accepted()) == 4


def test_a_connection_lost_mid_message_fails_that_message_only(
    smtp_server: ScriptedServer,
) -> None:
    batch = [*readers(3, "a"), message("drop@example.org"), *readers(3, "b")]
    results = send_many(sender(smtp_server, "?connections=2"), batch)

    error = results.pop("drop@example.org")
    assert error is not None and not error.permanent and error.code is None
    assert "SMTP unavailable" in str(error)
    assert all(e is None for e in results.values())
    assert len(smtp_server.accepted()) == 6


def test_sessions_closed_by_the_server_are_reopened(smtp_server: ScriptedServer) -> None:
    async def send_twice() -> list[SendResult]:
        async with sender(smtp_server, "?connections=2").pool() as pool:
            first = [r async for r in pool.send_all(readers(4, "a"))]
            smtp_server.close_sessions()
            return first + [r async for r in pool.send_all(readers(4, "b"))]

    results = asyncio.run(send_twice())

    assert [r.error for r in results] == [None] * 8
    assert len(smtp_server.accepted()) == 8
    assert len(smtp_server.peers()) == 4


def test_a_session_closed_while_idle_resends_the_message_on_a_new_one(
    smtp_server: ScriptedServer,
) -> None:
    # The synchronous connection's loop is not running between messages, so it
    # learns of the close only when it starts the next message.
    with sender(smtp_server).connection() as connection:
        connection.send(message("first@example.org"))
        smtp_server.close_sessions()
        connection.send(message("second@example.org"))

    assert smtp_server.accepted() == ["first@example.org", "second@example.org"]
    assert len(smtp_server.peers()) == 2


def test_results_arrive_while_later_messages_are_still_to_be_composed(
    smtp_server: ScriptedServer,
) -> None:
    arrived: list[str] = []
    arrived_when_composed: list[int] = []

    def composing() -> Iterator[OutgoingMessage]:
        for outgoing in readers(10):
            arrived_when_composed.append(len(arrived))
            yield outgoing

    sender(smtp_server, "?connections=2").send_many(
        composing(), lambda sent, error: arrived.append(sent.recipient)
    )

    assert len(arrived) == 10
    # Never more than the two sessions' messages (and one finished result not yet
    # handed over) ahead of the results.
    assert [n >= index - 3 for index, n in enumerate(arrived_when_composed)] == [True] * 10


def test_an_error_while_composing_is_raised_after_the_messages_in_flight_report(
    smtp_server: ScriptedServer,
) -> None:
    arrived: list[str] = []

    def composing() -> Iterator[OutgoingMessage]:
        yield from readers(3)
        raise RuntimeError("template broke")

    with pytest.raises(RuntimeError, match="template broke"):
        sender(smtp_server, "?connections=2").send_many(
            composing(), lambda sent, error: arrived.append(sent.recipient)
        )
    # Every message that went out was reported before the error.
    assert sorted(arrived) == smtp_server.accepted() == sorted(m.recipient for m in readers(3))


def test_an_error_in_the_callback_stops_sending(smtp_server: ScriptedServer) -> None:
    pulled: list[str] = []

    def composing() -> Iterator[OutgoingMessage]:
        for outgoing in readers(20):
            pulled.append(outgoing.recipient)
            yield outgoing

    def fail(sent: OutgoingMessage, error: SendError | None) -> None:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        sender(smtp_server, "?connections=2").send_many(composing(), fail)
    assert len(pulled) < 20


class Exploding:
    """A transport with a bug for one recipient."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutgoingMessage) -> None:
        if message.recipient.startswith("bug"):
            raise KeyError("surprise")
        self.sent.append(message.recipient)

    async def close(self) -> None:
        pass


def test_an_unexpected_error_is_that_message_s_transient_failure() -> None:
    transport = Exploding()

    async def send() -> list[SendResult]:
        async with SendPool(lambda: transport, connections=2) as pool:
            return [r async for r in pool.send_all([*readers(2), message("bug@x.org")])]

    results = {r.message.recipient: r.error for r in asyncio.run(send())}

    error = results.pop("bug@x.org")
    assert error is not None and not error.permanent and "surprise" in str(error)
    assert results == {"reader0@example.org": None, "reader1@example.org": None}


def test_pool_send_raises_the_message_s_error(smtp_server: ScriptedServer) -> None:
    async def send() -> None:
        async with sender(smtp_server).pool() as pool:
            await pool.send(message("ok@example.org"))
            await pool.send(message("gone@example.org"))

    with pytest.raises(SendError) as error:
        asyncio.run(send())
    assert error.value.code == 550
    assert smtp_server.accepted() == ["ok@example.org"]
