"""The RFC 8058 one-click unsubscribe on PostgreSQL: the spike after every send.

Mail providers POST ``List-Unsubscribe=One-Click`` to the link of the
List-Unsubscribe header, by the thousand within minutes of a large send. On
PostgreSQL, :class:`OneClickShortcut` answers those requests before FastAPI
routes them, and :class:`OneClickUnsubscriber` runs their one UPDATE on the event
loop, on a psycopg async connection in autocommit: the statement is its own
transaction, so one round trip, and no hand-off to the thread pool. Together they
take about a quarter of the web process's CPU time per request that the route
took in the thread pool (``benchmarks/web.py``).

Anything else (another encoding, a bad or revoked link, an erased reader) goes on
to the app unchanged, whose route answers as it always does. SQLite, the embedded
default, has neither: its web process serves one reader, not a spike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.clock import utcnow
from digest.subscriptions.subscribers import unsubscribe_by_link_async
from digest.subscriptions.tokens import InvalidToken, Purpose, Signer

PATH_PREFIX = "/unsubscribe/"
# RFC 8058: the body of the POST, form-encoded.
ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
FORM_URLENCODED = b"application/x-www-form-urlencoded"
ANSWER = b"You have been unsubscribed."
ANSWER_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(ANSWER)).encode()),
]


class OneClickUnsubscriber:
    """A pool of async connections for the one-click UPDATE; the app's lifespan
    opens and closes it on each process's event loop."""

    def __init__(self, engine: Engine, *, connections: int) -> None:
        # The sync engine's own connection arguments: the same server, user and options.
        _, options = engine.dialect.create_connect_args(engine.url)
        # SQLAlchemy's adapters for its sync connections: not needed for one UPDATE.
        options.pop("context", None)
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            kwargs={**options, "autocommit": True},
            min_size=1,
            max_size=connections,
            open=False,
            name="one-click",
        )

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def unsubscribe(self, subscriber_id: int, version: int, *, now: datetime) -> bool:
        async with self.pool.connection() as connection:
            return await unsubscribe_by_link_async(connection, subscriber_id, version, now=now)


class OneClickShortcut:
    """Plain ASGI in front of the app's routes: a form-encoded one-click POST to
    ``/unsubscribe/<token>`` whose token is good and whose reader the UPDATE finds
    gets its plain 200 here. Every other request, and a one-click that does not
    succeed here, reaches the app with its body as received."""

    def __init__(self, app: ASGIApp, *, unsubscriber: OneClickUnsubscriber, signer: Signer) -> None:
        self.app = app
        self.unsubscriber = unsubscriber
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _one_click_token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        # At most one byte more than the one-click body: enough to tell, never a big read.
        body, more_body = b"", True
        while more_body and len(body) <= len(ONE_CLICK_BODY):
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: the app sees that too.
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        if not more_body and body == ONE_CLICK_BODY and await self._unsubscribe(token):
            # A new list each time: the security headers are added to it on the way out.
            headers = list(ANSWER_HEADERS)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": ANSWER})
            return
        received: Message = {"type": "http.request", "body": body, "more_body": more_body}
        await self.app(scope, _replay(received, receive), send)

    async def _unsubscribe(self, token: str) -> bool:
        try:
            claims = self.signer.verify(Purpose.UNSUBSCRIBE, token)
        except InvalidToken:
            return False
        return await self.unsubscriber.unsubscribe(
            claims.subscriber_id, claims.version, now=utcnow()
        )


def _one_click_token(scope: Scope) -> str | None:
    """The token of a form-encoded POST to ``/unsubscribe/<token>``, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    token = path.removeprefix(PATH_PREFIX)
    if token == path or not token or "/" in token:
        return None
    for name, value in scope["headers"]:
        if name == b"content-type":
            return token if value.partition(b";")[0].strip().lower() == FORM_URLENCODED else None
    return None


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` with ``first`` put back in front."""
    pending: list[Message] = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
