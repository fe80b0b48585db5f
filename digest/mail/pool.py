"""Several messages in flight: a pool of sending sessions, paced to a rate.

A session (one SMTP connection, say) carries one message at a time, so a pool of
N sessions keeps up to N messages in flight, each session reused from message to
message. An optional rate caps the messages per second the pool starts, for
providers that impose one (Amazon SES, for one). Results stream out as they
complete, in completion order, while later messages are still being sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import NamedTuple, Protocol

from aiolimiter import AsyncLimiter

from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError

log = logging.getLogger(__name__)


class PooledSession(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Hand one message over, or raise :class:`SendError`; reconnect as needed."""

    async def close(self) -> None: ...


class SendResult(NamedTuple):
    message: OutgoingMessage
    # None when the message was accepted.
    error: SendError | None


class SendPool:
    """``async with SendPool(open_session, connections=4, rate=14) as pool``.

    Sessions are made on first need, at most ``connections`` of them, and closed
    when the block ends.
    """

    def __init__(
        self,
        open_session: Callable[[], PooledSession],
        *,
        connections: int,
        rate: float | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError(f"a pool needs at least one connection, got {connections}")
        self._open_session = open_session
        self.connections = connections
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[PooledSession] = []
        self._sessions: list[PooledSession] = []
        # Capacity of one: starts are spaced 1/rate apart, never a burst of a
        # second's worth, which a provider counting per second would refuse.
        self._limiter = AsyncLimiter(1, 1 / rate) if rate else None

    async def __aenter__(self) -> SendPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        sessions, self._sessions, self._idle = self._sessions, [], []
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)

    async def send(self, message: OutgoingMessage) -> None:
        """Send one message on a free session (waiting for one), or raise
        :class:`SendError`."""
        async with self._slots:
            session = self._idle.pop() if self._idle else self._new_session()
            try:
                if self._limiter is not None:
                    await self._limiter.acquire()
                await session.send(message)
            finally:
                self._idle.append(session)

    def _new_session(self) -> PooledSession:
        session = self._open_session()
        self._sessions.append(session)
        return session

    async def send_all(
        self, messages: Iterable[OutgoingMessage]
    ) -> AsyncGenerator[SendResult, None]:
        """Send every message, ``connections`` at a time, yielding each one's result
        as it completes. ``messages`` is read one message at a time as a session
        frees up, so a generator composing lazily never runs far ahead.

        One message's failure is its result, never the others'. An exception from
        ``messages`` is raised after the results of the messages in flight. Close
        the generator (``contextlib.aclosing``) to stop early: the messages in
        flight are then abandoned.
        """
        source = iter(messages)
        # From ``messages``, or a bug of ours in a sending task: raised at the end.
        failures: list[Exception] = []
        # Bounded: a consumer that falls behind holds the senders back rather than
        # letting results pile up.
        results: asyncio.Queue[SendResult | None] = asyncio.Queue(maxsize=self.connections)

        # Set once the consumer stops reading. Cancelling the senders is not enough:
        # a transport may turn the cancellation into an error of its own, and such a
        # sender would then wait forever to hand over a result nobody reads.
        stopping = False

        def next_message() -> OutgoingMessage | None:
            if failures or stopping:
                return None
            try:
                return next(source)
            except StopIteration:
                return None
            except Exception as exc:
                failures.append(exc)
                return None

        async def put(item: SendResult | None) -> None:
            if not stopping:
                await results.put(item)

        async def sending() -> None:
            try:
                while (message := next_message()) is not None:
                    await put(SendResult(message, await self._outcome(message)))
            except Exception as exc:
                failures.append(exc)
            # Not on cancellation: only the consumer cancels, and it has stopped reading.
            await put(None)

        workers = [asyncio.create_task(sending()) for _ in range(self.connections)]
        try:
            finished = 0
            while finished < len(workers):
                result = await results.get()
                if result is None:
                    finished += 1
                else:
                    yield result
        finally:
            stopping = True
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if failures:
            raise failures[0]

    async def _outcome(self, message: OutgoingMessage) -> SendError | None:
        try:
            await self.send(message)
        except SendError as exc:
            return exc
        except Exception as exc:
            # A bug or a surprise from the transport: that message's failure,
            # retried later, never the whole batch's.
            log.exception("unexpected error sending %s", message.message_id)
            return SendError(f"unexpected error: {exc!r}", permanent=False)
        return None
