"""``/unsubscribe/<token>``: GET shows a button, POST unsubscribes. A POST whose
body is ``List-Unsubscribe=One-Click`` is the RFC 8058 one-click request that mail
clients send without cookies; it gets a plain 200. On PostgreSQL most of those
are answered before routing (:mod:`digest.web.one_click`); this route answers the
rest."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from digest.clock import utcnow
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import resubscribe, unsubscribe, unsubscribe_by_link
from digest.web.dependencies import (
    EngineDep,
    FormTokensDep,
    LinksDep,
    PagesDep,
    TransactionDep,
    UnsubscribeFields,
    UnsubscribeForm,
    UnsubscribeLink,
)
from digest.web.rendering import Pages
from digest.web.signed import FormTokens

router = APIRouter()


def unsubscribe_view(
    pages: Pages,
    links: Links,
    form_tokens: FormTokens,
    subscriber: Subscriber,
    token: str,
    *,
    done: bool,
) -> HTMLResponse:
    return pages.page(
        "unsubscribe",
        email=subscriber.email,
        token=token,
        done=done or subscriber.status == SubscriberStatus.UNSUBSCRIBED,
        preferences_url=links.preferences(subscriber),
        csrf=form_tokens.issue(subscriber),
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(
    link: UnsubscribeLink,
    pages: PagesDep,
    links: LinksDep,
    form_tokens: FormTokensDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    def show(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        return unsubscribe_view(pages, links, form_tokens, subscriber, link.token, done=False)

    return await transaction(show)


@router.post("/unsubscribe/{token}", response_model=None)
async def unsubscribe_post(
    fields: UnsubscribeFields,
    link: UnsubscribeLink,
    engine: EngineDep,
    pages: PagesDep,
    links: LinksDep,
    form_tokens: FormTokensDep,
    transaction: TransactionDep,
) -> Response:
    one_click = fields.get("List-Unsubscribe") == "One-Click"

    if one_click:
        claims = link.claims

        def one_statement() -> bool:
            # A connection, not a session: this is the spike after every send.
            with engine.begin() as connection:
                return unsubscribe_by_link(
                    connection, claims.subscriber_id, claims.version, now=utcnow()
                )

        if await run_in_threadpool(one_statement):
            return PlainTextResponse("You have been unsubscribed.")

    def leave(session: Session) -> Response:
        # Also says why a one-click failed: the subscriber was erased, or links revoked.
        subscriber = link.holder(session)
        unsubscribe(session, subscriber, now=utcnow())
        if one_click:
            return PlainTextResponse("You have been unsubscribed.")
        return unsubscribe_view(pages, links, form_tokens, subscriber, link.token, done=True)

    return await transaction(leave)


@router.post("/unsubscribe/{token}/resubscribe", response_class=HTMLResponse)
async def resubscribe_post(
    form: UnsubscribeForm, pages: PagesDep, links: LinksDep, transaction: TransactionDep
) -> HTMLResponse:
    def come_back(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        resubscribe(subscriber, now=utcnow())
        return pages.message(
            "Welcome back",
            f"Digests to {subscriber.email} start again with the next edition.",
            link=(links.preferences(subscriber), "Manage your preferences"),
        )

    return await transaction(come_back)
