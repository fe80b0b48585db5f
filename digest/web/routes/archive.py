"""Digests outside the mailbox: ``/digests/<token>`` ("View in browser"), the reader's
private feed ``/feeds/<token>``, and the public ``/trending`` page and feed of each
day's trending papers (no personal data: the same for everyone)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.delivery.archive import (
    SentDigest,
    neighbour_days,
    sent_digest,
    sent_digests,
    trending_day,
    trending_days,
)
from digest.delivery.compose import DigestComposer, paper_context
from digest.delivery.schedule import edition_label
from digest.papers.models import Paper
from digest.subscriptions.tokens import InvalidToken, Purpose
from digest.web.atom import CONTENT_TYPE, Entry, Feed, render_feed, tag_uri
from digest.web.dependencies import (
    LinksDep,
    PagesDep,
    TransactionDep,
    collaborators_of,
    signed_link_for,
)
from digest.web.rendering import Pages
from digest.web.signed import SignedLink

router = APIRouter()

ViewLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.VIEW))]
FeedLink = Annotated[SignedLink, Depends(signed_link_for(Purpose.FEED))]
# A reader's feed carries their last digests; the public one the last two weeks.
READER_FEED_DIGESTS = 20
PUBLIC_FEED_DAYS = 14


def composer_of(request: Request) -> DigestComposer:
    return collaborators_of(request).runtime.composer


def trending_size(request: Request) -> int:
    return collaborators_of(request).runtime.ranking_config.selection.trending_section_size


def digest_html(composer: DigestComposer, digest: SentDigest) -> str:
    """The digest as it was mailed: the same templates over the stored picks."""
    item = digest.item
    message = composer.reference(
        item.subscriber,
        item.picks,
        delivery_id=item.delivery_id,
        edition=item.edition,
        now=digest.sent_at,
        trending=item.trending,
    )
    body = message.get_body(("html",))
    assert body is not None, "a digest always has an HTML part"
    return str(body.get_content())


@router.get("/digests/{token}", response_class=HTMLResponse)
async def digest_page(
    request: Request, link: ViewLink, pages: PagesDep, transaction: TransactionDep
) -> HTMLResponse:
    composer, size = composer_of(request), trending_size(request)

    def show(session: Session) -> HTMLResponse:
        subscriber = link.holder(session)
        if link.nonce is None:
            raise InvalidToken("this link is not valid")
        digest = sent_digest(session, subscriber.id, link.nonce, trending_size=size)
        if digest is None:
            return pages.message(
                "This digest is not here",
                "It was never sent, or it has been removed since.",
                status_code=404,
            )
        # A page of its own, so the search engines a forwarded link reaches keep out.
        return HTMLResponse(
            digest_html(composer, digest), headers={"X-Robots-Tag": "noindex, nofollow"}
        )

    return await transaction(show)


@router.get("/feeds/{token}")
async def reader_feed(
    request: Request, link: FeedLink, links: LinksDep, transaction: TransactionDep
) -> Response:
    collaborators = collaborators_of(request)
    size = trending_size(request)
    site = collaborators.runtime.site

    def feed(session: Session) -> Response:
        subscriber = link.holder(session)
        digests = sent_digests(
            session, subscriber.id, limit=READER_FEED_DIGESTS, trending_size=size
        )
        entries = [
            Entry(
                id=tag_uri(
                    site.from_domain, f"{d.sent_at:%Y-%m-%d}", f"digest/{d.item.delivery_id}"
                ),
                title=digest_title(d),
                updated=d.sent_at,
                link=links.view(subscriber, d.item.delivery_id),
                summary="; ".join(p.paper.shown_title for p in d.item.picks),
                content_html=entry_html(
                    collaborators.pages, d, links.view(subscriber, d.item.delivery_id)
                ),
            )
            for d in digests
        ]
        body = render_feed(
            Feed(
                id=tag_uri(
                    site.from_domain, f"{subscriber.created_at:%Y-%m-%d}", f"reader/{subscriber.id}"
                ),
                title=f"{site.name}: your digests",
                subtitle="Every digest sent to you, as it was mailed",
                self_url=str(request.url),
                alternate_url=links.preferences(subscriber),
                entries=entries,
                author=site.name,
            ),
            now=utcnow(),
        )
        return Response(body, media_type=CONTENT_TYPE, headers={"X-Robots-Tag": "noindex"})

    return await transaction(feed)


def entry_html(pages: Pages, digest: SentDigest, view_url: str) -> str:
    """A digest's papers as a feed reader shows them: plain HTML, none of the email's
    table layout and styles, which readers' sanitisers strip (and the text with them)."""
    picks = [
        {**paper_context(p.paper), "authors": ", ".join(shown_authors(p.paper)), "reason": p.reason}
        for p in digest.item.picks
    ]
    return pages.render("feed_entry", picks=picks, view_url=view_url)


def digest_title(digest: SentDigest) -> str:
    picks = digest.item.picks
    more = f" + {len(picks) - 1} more" if len(picks) > 1 else ""
    return f"{picks[0].paper.shown_title}{more} · {edition_label(digest.item.edition)}"


@router.get("/trending", response_class=HTMLResponse)
async def latest_trending(pages: PagesDep, transaction: TransactionDep) -> HTMLResponse:
    def show(session: Session) -> HTMLResponse:
        days = trending_days(session, limit=1)
        if not days:
            return pages.message(
                "Nothing trending yet",
                "The first day's trending papers appear here once the first digests are ranked.",
                status_code=404,
            )
        return day_page(pages, session, days[0].day, days[0].papers)

    return await transaction(show)


@router.get("/trending.atom")
async def trending_feed(request: Request, transaction: TransactionDep) -> Response:
    site = collaborators_of(request).runtime.site
    base = site.base_url.rstrip("/")

    def feed(session: Session) -> Response:
        entries = [
            Entry(
                id=tag_uri(site.from_domain, day.day.isoformat(), f"trending/{paper.id}"),
                title=paper.shown_title,
                updated=datetime(day.day.year, day.day.month, day.day.day),
                link=paper.url or f"{base}/trending/{day.day.isoformat()}",
                summary=paper_context(paper)["summary"],
                authors=shown_authors(paper),
            )
            for day in trending_days(session, limit=PUBLIC_FEED_DAYS)
            for paper in day.papers
        ]
        body = render_feed(
            Feed(
                id=tag_uri(site.from_domain, "2026-01-01", "trending"),
                title=f"{site.name}: trending papers",
                subtitle="The most trending research papers of each day",
                self_url=f"{base}/trending.atom",
                alternate_url=f"{base}/trending",
                entries=entries,
                author=site.name,
            ),
            now=utcnow(),
        )
        return Response(body, media_type=CONTENT_TYPE)

    return await transaction(feed)


@router.get("/trending/{day}", response_class=HTMLResponse)
async def trending_on(day: str, pages: PagesDep, transaction: TransactionDep) -> HTMLResponse:
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        return pages.message("No such day", "Days look like 2026-12-01.", status_code=404)

    def show(session: Session) -> HTMLResponse:
        found = trending_day(session, wanted)
        if found is None:
            return pages.message(
                "Nothing trending that day",
                f"No digest was ranked for {wanted:%-d %B %Y}.",
                status_code=404,
                link=("/trending", "See the latest day"),
            )
        return day_page(pages, session, found.day, found.papers)

    return await transaction(show)


def day_page(pages: PagesDep, session: Session, day: date, papers: list[Paper]) -> HTMLResponse:
    earlier, later = neighbour_days(session, day)
    return pages.page(
        "trending",
        day=day,
        papers=[{**paper_context(p), "authors": ", ".join(shown_authors(p))} for p in papers],
        earlier=earlier,
        later=later,
    )


def shown_authors(paper: Paper) -> list[str]:
    """The first three authors, then "et al.", as a paper's byline reads."""
    names = list(paper.authors)
    if len(names) > 3:
        return [*names[:3], "et al."]
    return names
