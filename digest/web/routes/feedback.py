"""``/feedback/<token>``: "more / fewer like this" on a paper of a digest. GET
shows the button (mail scanners follow links), POST records the choice."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.papers.models import Paper
from digest.subscriptions.feedback import parse_kind, record_feedback, withdraw_feedback
from digest.subscriptions.links import Links
from digest.subscriptions.models import FeedbackKind, Subscriber
from digest.subscriptions.tokens import InvalidToken
from digest.web.dependencies import FeedbackLink, FormFields, LinksDep, PagesDep, TransactionDep
from digest.web.rendering import Pages
from digest.web.signed import SignedLink

router = APIRouter()


def feedback_holder(session: Session, link: SignedLink) -> tuple[Subscriber, Paper | None]:
    """The link's subscriber and paper (None: the paper was deleted since)."""
    subscriber = link.holder(session)
    paper_id = link.claims.paper_id
    if paper_id is None:
        raise InvalidToken("this link is not valid")
    return subscriber, session.get(Paper, paper_id)


def paper_gone(pages: Pages, links: Links, subscriber: Subscriber) -> HTMLResponse:
    # Not LinkGone: the subscription is fine, only the paper is not.
    return pages.message(
        "This paper is no longer here",
        "It has been removed, so feedback on it would change nothing. "
        "Your subscription is not affected.",
        status_code=404,
        link=(links.preferences(subscriber), "Edit your interests and other preferences"),
    )


def feedback_view(
    pages: Pages,
    links: Links,
    subscriber: Subscriber,
    paper: Paper,
    token: str,
    kind: str,
    *,
    done: bool,
) -> HTMLResponse:
    return pages.page(
        "feedback",
        kind=kind,
        done=done,
        token=token,
        title=paper.shown_title,
        email=subscriber.email,
        preferences_url=links.preferences(subscriber),
    )


@router.get("/feedback/{token}", response_class=HTMLResponse)
async def feedback_page(
    link: FeedbackLink,
    pages: PagesDep,
    links: LinksDep,
    transaction: TransactionDep,
    kind: str = "more",
) -> HTMLResponse:
    # A GET never records anything: mail scanners follow links.
    def show(session: Session) -> HTMLResponse:
        subscriber, paper = feedback_holder(session, link)
        if paper is None:
            return paper_gone(pages, links, subscriber)
        wanted = parse_kind(kind) or FeedbackKind.MORE
        return feedback_view(pages, links, subscriber, paper, link.token, wanted.value, done=False)

    return await transaction(show)


@router.post("/feedback/{token}", response_class=HTMLResponse)
async def feedback_post(
    fields: FormFields,
    link: FeedbackLink,
    pages: PagesDep,
    links: LinksDep,
    transaction: TransactionDep,
) -> HTMLResponse:
    def record(session: Session) -> HTMLResponse:
        subscriber, paper = feedback_holder(session, link)
        if paper is None:
            return paper_gone(pages, links, subscriber)
        wanted = fields.get("kind", "")
        kind = parse_kind(wanted)
        if kind is not None:
            record_feedback(session, subscriber, paper.id, kind, now=utcnow())
        elif wanted == "clear":
            withdraw_feedback(session, subscriber, paper.id)
        else:
            return pages.message("Unknown choice", "Use the buttons of the page.", 400)
        return feedback_view(pages, links, subscriber, paper, link.token, wanted, done=True)

    return await transaction(record)
