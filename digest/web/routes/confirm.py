"""``/confirm/<token>`` (a subscription) and ``/confirm-email/<token>`` (a new
address). GET shows a button, since mail scanners follow GET links; POST acts.
Each link works once."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.subscribers import (
    SubscriberError,
    confirm_email_change,
    confirm_subscription,
)
from digest.subscriptions.tokens import InvalidToken
from digest.web.dependencies import (
    ChangeEmailLink,
    ConfirmLink,
    LinksDep,
    PagesDep,
    SameOrigin,
    TransactionDep,
)
from digest.web.rendering import Pages

router = APIRouter()


def link_used(pages: Pages) -> HTMLResponse:
    """A confirmation link once it has done its job. It names no address and leads
    nowhere personal: a forwarded or leaked confirmation email is no key to the
    subscription. Whoever owns the address asks the front page, which mails its
    links to that address only."""
    return pages.message(
        "This link was already used",
        "A confirmation link works once. To manage your subscription, enter your "
        "address on the front page: we will email you a new link.",
        link=("/", "Ask for a new link by email"),
    )


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(
    link: ConfirmLink, pages: PagesDep, transaction: TransactionDep
) -> HTMLResponse:
    def look(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        if link.nonce != subscriber.confirm_nonce or subscriber.status != SubscriberStatus.PENDING:
            return link_used(pages)
        return pages.page("confirm", email=subscriber.email, action=f"/confirm/{link.token}")

    return await transaction(look)


@router.post("/confirm/{token}", response_class=HTMLResponse, dependencies=[SameOrigin])
async def confirm_post(
    link: ConfirmLink, pages: PagesDep, links: LinksDep, transaction: TransactionDep
) -> HTMLResponse:
    def confirm(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        if link.nonce != subscriber.confirm_nonce or not confirm_subscription(
            subscriber, now=utcnow()
        ):
            return link_used(pages)
        return pages.page(
            "confirmed",
            email=subscriber.email,
            preferences_url=links.preferences(subscriber),
            frequency=subscriber.frequency.value,
            send_hour=subscriber.send_hour,
            timezone=subscriber.timezone,
        )

    return await transaction(confirm)


@router.get("/confirm-email/{token}", response_class=HTMLResponse)
async def confirm_email_page(
    link: ChangeEmailLink, pages: PagesDep, transaction: TransactionDep
) -> HTMLResponse:
    def look(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        if link.nonce != subscriber.confirm_nonce or subscriber.pending_email is None:
            raise InvalidToken("this confirmation link was already used")
        return pages.page(
            "confirm_email",
            email=subscriber.email,
            new_email=subscriber.pending_email,
            action=f"/confirm-email/{link.token}",
        )

    return await transaction(look)


@router.post("/confirm-email/{token}", response_class=HTMLResponse, dependencies=[SameOrigin])
async def confirm_email_post(
    link: ChangeEmailLink, pages: PagesDep, links: LinksDep, transaction: TransactionDep
) -> HTMLResponse:
    def confirm(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        if link.nonce != subscriber.confirm_nonce:
            raise InvalidToken("this confirmation link was already used")
        try:
            address = confirm_email_change(session, subscriber)
        except SubscriberError as exc:
            return pages.message("Address not changed", str(exc), status_code=409)
        return pages.message(
            "Address changed",
            f"Your digests now go to {address}.",
            link=(links.preferences(subscriber), "Manage your preferences"),
        )

    return await transaction(confirm)
