"""Composing one reader's digest email from their picks.

Readers of an edition get mostly the same email: the same papers, each shown the same
way. So each paper's block (``email/digest/paper.{html,txt}``) is rendered once, and
again only when the paper changes; the frame around the blocks (``body.{html,txt}``)
once per edition, frequency and number of papers. Both are kept as skeletons
(:mod:`digest.mail.skeleton`) with holes for what is the reader's own: address,
interests, reasons and signed links. A reader's message is then those holes filled and
joined into MIME bytes (:mod:`digest.mail.wire`), with no Jinja and no ``EmailMessage``.

:meth:`DigestComposer.reference` renders the same email the plain way, Jinja for all of
it and an ``EmailMessage``; the tests hold :meth:`DigestComposer.compose` to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from digest.delivery.schedule import edition_label, edition_short_label
from digest.mail import wire
from digest.mail.bounces import BounceAddresses
from digest.mail.identity import SiteIdentity
from digest.mail.message import AUTO_SUBMITTED, build_message
from digest.mail.outgoing import OutgoingMessage
from digest.mail.rendering import render_email
from digest.mail.skeleton import Holes, Skeleton
from digest.papers.models import Paper
from digest.ranking.picks import Pick
from digest.subscriptions.choices import Frequency
from digest.subscriptions.links import Links
from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import Purpose

SUMMARY_WORDS = 70
# A long-lived composer (a worker) starts a cache over when it grows past this.
_CACHE_LIMIT = 20_000
# "2026-11-21", "2026-W47": what schedule.py names editions, safe in a Message-ID.
_EDITION = re.compile(r"[0-9A-Za-z-]+")
_LIST_UNSUBSCRIBE_POST = wire.header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
_AUTO_SUBMITTED = wire.header("Auto-Submitted", AUTO_SUBMITTED)


def summarise(abstract: str, words: int = SUMMARY_WORDS) -> str:
    parts = abstract.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:") + " …"


def digest_message_id(*, edition: str, subscriber_id: int, domain: str) -> str:
    """The Message-ID of one reader's digest of one edition, the same at every attempt.

    A copy sent again after a crash carries the first one's id, so mail systems and the
    delivery ledger see one message. It names the edition and the subscriber's row, and
    nothing about the person.
    """
    if not _EDITION.fullmatch(edition):
        raise ValueError(f"edition {edition!r} cannot be part of a Message-ID")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"<digest.{edition}.{subscriber_id}@{domain}>"


def paper_context(paper: Paper) -> dict[str, Any]:
    """What a paper's block shows of it, the same for every reader."""
    return {
        # Converted from LaTeX once, at ingest.
        "title": paper.shown_title,
        "url": paper.url,
        "discuss_url": paper.links.get("hf_search") or paper.links.get("hf", ""),
        "summary": summarise(paper.shown_abstract),
        "published": f"{paper.published_on:%d %b %Y}" if paper.published_on else "",
        "author_count": paper.author_count or len(paper.authors) or None,
    }


@dataclass(frozen=True)
class PaperBlock:
    """One paper of a digest, rendered: what ``body.html`` and ``body.txt`` place."""

    html: str
    text: str


def render_paper(environment: Environment, pick: dict[str, Any], number: int | str) -> PaperBlock:
    """A paper's block, the ``number``-th of the digest; ``pick`` is its
    :func:`paper_context` with the reader's ``reason``, ``more_url`` and ``fewer_url``
    (or, for a skeleton, holes' markers in their place)."""
    context = {"pick": pick, "number": number}
    return PaperBlock(
        html=Markup(environment.get_template("email/digest/paper.html").render(context)),
        text=environment.get_template("email/digest/paper.txt").render(context),
    )


def render_trending(environment: Environment, pick: Pick) -> PaperBlock:
    """A paper of the "Trending today" section: title, link and reason, the same for
    every reader (no feedback links: it was not picked for them)."""
    context = {
        "paper": {"title": pick.paper.shown_title, "url": pick.paper.url, "reason": pick.reason}
    }
    return PaperBlock(
        html=Markup(environment.get_template("email/digest/trending.html").render(context)),
        text=environment.get_template("email/digest/trending.txt").render(context),
    )


def trending_heading(frequency_label: str) -> str:
    return "Trending this week" if frequency_label == "weekly" else "Trending today"


@dataclass(frozen=True)
class Composed:
    outgoing: OutgoingMessage

    @property
    def message_id(self) -> str:
        return self.outgoing.message_id


@dataclass
class _PreparedPaper:
    context: dict[str, Any]
    # Keyed by whether the reader's pick has a reason line: (HTML, text).
    blocks: dict[bool, tuple[Skeleton, Skeleton]] = field(default_factory=dict)


class DigestComposer:
    """Holds what is shared by every reader of an edition: templates, signer, paper blocks."""

    def __init__(
        self,
        environment: Environment,
        links: Links,
        site: SiteIdentity,
        bounces: BounceAddresses,
    ) -> None:
        self.environment = environment
        self.links = links
        self.site = site
        self.bounces = bounces
        self._papers: dict[tuple[int, datetime | None], _PreparedPaper] = {}
        self._frames: dict[tuple[str, str, bool, int, int], tuple[Skeleton, Skeleton]] = {}
        self._trending: dict[tuple[int, datetime | None, str], tuple[bytes, bytes]] = {}
        self._subjects: dict[tuple[int, datetime | None, int, str], bytes] = {}
        self._values: dict[str, tuple[bytes, bytes]] = {}
        self._date: tuple[datetime | None, bytes] = (None, b"")
        self._from = wire.header("From", site.from_address)
        self._list_id = wire.header("List-Id", site.digest_list_id)
        self._reply_to = wire.header("Reply-To", site.reply_to) if site.reply_to else b""
        self._feedback_ids: dict[str, bytes] = {}

    def envelope_sender(self, delivery_id: int) -> str:
        """MAIL FROM of a delivery's digest: the VERP address its bounces come back to."""
        return self.bounces.for_delivery(delivery_id)

    def compose(
        self,
        subscriber: Subscriber,
        picks: list[Pick],
        *,
        delivery_id: int,
        edition: str,
        now: datetime,
        trending: Sequence[Pick] = (),
    ) -> Composed:
        if not picks:
            raise ValueError("a digest shows at least one paper")
        links = self.links
        unsubscribe_token = links.token(Purpose.UNSUBSCRIBE, subscriber)
        preferences_token = _token_piece(links.token(Purpose.PREFERENCES, subscriber))
        email_html, email_text = _encoded(subscriber.email)
        html = {
            b"email": email_html,
            b"unsubscribe_token": _token_piece(unsubscribe_token),
            b"preferences_token": preferences_token,
            b"view_token": _token_piece(links.view_token(subscriber, delivery_id)),
        }
        text = {**html, b"email": email_text}
        interests = subscriber.interests
        if interests:
            html[b"interests"], text[b"interests"] = self._encoded(interests)
        block: dict[bytes, bytes] = {}
        for number, pick in enumerate(picks, start=1):
            paper = self._prepared(pick.paper)
            has_reason = bool(pick.reason)
            block_html, block_text = paper.blocks.get(has_reason) or self._blocks(paper, has_reason)
            block[b"number"] = str(number).encode("ascii")
            block[b"feedback_token"] = _token_piece(links.feedback_token(subscriber, pick.paper.id))
            if has_reason:
                reason_html, reason_text = self._encoded(pick.reason)
                block[b"reason"] = reason_html
            html[b"paper%d" % number] = block_html.fill(block)
            if has_reason:
                block[b"reason"] = reason_text
            text[b"paper%d" % number] = block_text.fill(block)
        for number, pick in enumerate(trending, start=1):
            html[b"trending%d" % number], text[b"trending%d" % number] = self._trending_block(pick)
        frame_html, frame_text = self._frame(
            edition, _frequency_label(subscriber), bool(interests), len(picks), len(trending)
        )

        message_id = digest_message_id(
            edition=edition, subscriber_id=subscriber.id, domain=self.site.from_domain
        )
        unsubscribe = links.unsubscribe_with(unsubscribe_token)
        recipient, to = wire.recipient(subscriber.email)
        headers = (
            self._from,
            to,
            self._subject(picks[0].paper, len(picks), edition),
            self._date_header(now),
            b"Message-ID: " + message_id.encode("ascii") + wire.CRLF,
            self._reply_to,
            _AUTO_SUBMITTED,
            self._feedback_id(edition),
            self._list_id,
            wire.header("List-Unsubscribe", f"<{unsubscribe.https_url}>, <{unsubscribe.mailto}>"),
            _LIST_UNSUBSCRIBE_POST,
        )
        return Composed(
            OutgoingMessage(
                sender=self.envelope_sender(delivery_id),
                recipient=recipient,
                message_id=message_id,
                data=wire.alternative(headers, frame_text.fill(text), frame_html.fill(html)),
            )
        )

    def reference(
        self,
        subscriber: Subscriber,
        picks: list[Pick],
        *,
        delivery_id: int,
        edition: str,
        now: datetime,
        trending: Sequence[Pick] = (),
    ) -> EmailMessage:
        """The same email composed the plain way: every template rendered for this reader,
        an ``EmailMessage`` built from them. What :meth:`compose` must equal (sent from
        :meth:`envelope_sender`)."""
        unsubscribe = self.links.unsubscribe(subscriber)
        papers = [
            render_paper(
                self.environment,
                {
                    **paper_context(pick.paper),
                    "reason": pick.reason,
                    "more_url": self.links.feedback(subscriber, pick.paper.id, "more"),
                    "fewer_url": self.links.feedback(subscriber, pick.paper.id, "fewer"),
                },
                number,
            )
            for number, pick in enumerate(picks, start=1)
        ]
        context = {
            "site_name": self.site.name,
            "email": subscriber.email,
            "interests": subscriber.interests,
            "frequency_label": _frequency_label(subscriber),
            "edition_label": edition_label(edition),
            "edition_short_label": edition_short_label(edition),
            "unsubscribe_url": unsubscribe.https_url,
            "preferences_url": self.links.preferences(subscriber),
            "view_url": self.links.view(subscriber, delivery_id),
            "paper_count": len(picks),
            "first_title": picks[0].paper.shown_title,
            "papers": papers,
            "trending": [render_trending(self.environment, pick) for pick in trending],
            "trending_heading": trending_heading(_frequency_label(subscriber)),
        }
        rendered = render_email(self.environment, "digest", context)
        return build_message(
            rendered,
            to=subscriber.email,
            from_address=self.site.from_address,
            message_domain=self.site.from_domain,
            date=now,
            unsubscribe=unsubscribe,
            list_id=self.site.digest_list_id,
            message_id=digest_message_id(
                edition=edition, subscriber_id=subscriber.id, domain=self.site.from_domain
            ),
            reply_to=self.site.reply_to,
            feedback_id=self.site.feedback_id(edition, "digest"),
        )

    def _prepared(self, paper: Paper) -> _PreparedPaper:
        # Per paper, not per reader: a paper appears in many readers' digests. Stored
        # papers change only with updated_at.
        key = (paper.id, paper.updated_at)
        prepared = self._papers.get(key)
        if prepared is None:
            if len(self._papers) >= _CACHE_LIMIT:
                self._papers.clear()
            context = paper_context(paper)
            prepared = self._papers[key] = _PreparedPaper(context=context)
        return prepared

    def _blocks(self, paper: _PreparedPaper, has_reason: bool) -> tuple[Skeleton, Skeleton]:
        holes = Holes()
        token = holes["feedback_token"]
        pick = {
            **paper.context,
            "reason": holes["reason"] if has_reason else "",
            "more_url": self.links.feedback_with(token, "more"),
            "fewer_url": self.links.feedback_with(token, "fewer"),
        }
        block = render_paper(self.environment, pick, holes["number"])
        paper.blocks[has_reason] = blocks = (holes.cut(block.html), holes.cut(block.text))
        return blocks

    def _trending_block(self, pick: Pick) -> tuple[bytes, bytes]:
        # The same for every reader whose section shows the paper.
        key = (pick.paper.id, pick.paper.updated_at, pick.reason)
        block = self._trending.get(key)
        if block is None:
            if len(self._trending) >= _CACHE_LIMIT:
                self._trending.clear()
            rendered = render_trending(self.environment, pick)
            block = self._trending[key] = (
                wire.quoted_printable(rendered.html),
                wire.quoted_printable(rendered.text),
            )
        return block

    def _frame(
        self,
        edition: str,
        frequency_label: str,
        has_interests: bool,
        paper_count: int,
        trending_count: int,
    ) -> tuple[Skeleton, Skeleton]:
        key = (edition, frequency_label, has_interests, paper_count, trending_count)
        frame = self._frames.get(key)
        if frame is None:
            if len(self._frames) >= _CACHE_LIMIT:
                self._frames.clear()
            holes = Holes()
            papers = [holes[f"paper{number}"] for number in range(1, paper_count + 1)]
            context = {
                "site_name": self.site.name,
                "email": holes["email"],
                "interests": holes["interests"] if has_interests else "",
                "frequency_label": frequency_label,
                "edition_label": edition_label(edition),
                "unsubscribe_url": self.links.unsubscribe_with(
                    holes["unsubscribe_token"]
                ).https_url,
                "preferences_url": self.links.preferences_with(holes["preferences_token"]),
                "view_url": self.links.view_with(holes["view_token"]),
                "paper_count": paper_count,
                "papers": [PaperBlock(html=paper, text=paper) for paper in papers],
                "trending": [
                    PaperBlock(html=holes[f"trending{n}"], text=holes[f"trending{n}"])
                    for n in range(1, trending_count + 1)
                ],
                "trending_heading": trending_heading(frequency_label),
            }
            template = self.environment.get_template
            frame = self._frames[key] = (
                holes.cut(_body(template("email/digest/body.html").render(context))),
                holes.cut(_body(template("email/digest/body.txt").render(context))),
            )
        return frame

    def _encoded(self, value: str) -> tuple[bytes, bytes]:
        # Reasons and interests repeat from reader to reader.
        encoded = self._values.get(value)
        if encoded is None:
            if len(self._values) >= _CACHE_LIMIT:
                self._values.clear()
            encoded = self._values[value] = _encoded(value)
        return encoded

    def _subject(self, first: Paper, paper_count: int, edition: str) -> bytes:
        key = (first.id, first.updated_at, paper_count, edition)
        subject = self._subjects.get(key)
        if subject is None:
            if len(self._subjects) >= _CACHE_LIMIT:
                self._subjects.clear()
            rendered = self.environment.get_template("email/digest/subject.txt").render(
                site_name=self.site.name,
                first_title=first.shown_title,
                paper_count=paper_count,
                edition_short_label=edition_short_label(edition),
            )
            # As render_email: a header is one line.
            subject = self._subjects[key] = wire.header("Subject", " ".join(rendered.split()))
        return subject

    def _feedback_id(self, edition: str) -> bytes:
        feedback_id = self._feedback_ids.get(edition)
        if feedback_id is None:
            if len(self._feedback_ids) >= _CACHE_LIMIT:
                self._feedback_ids.clear()
            feedback_id = self._feedback_ids[edition] = wire.header(
                "Feedback-ID", self.site.feedback_id(edition, "digest")
            )
        return feedback_id

    def _date_header(self, now: datetime) -> bytes:
        # A batch is composed at one `now`.
        if self._date[0] != now:
            self._date = (now, wire.header("Date", format_datetime(now)))
        return self._date[1]


def _frequency_label(subscriber: Subscriber) -> str:
    return "weekly" if subscriber.frequency == Frequency.WEEKLY else "daily"


def _body(rendered: str) -> str:
    # As EmailMessage.set_content: a part's text ends with a line end.
    return rendered if rendered.endswith(("\n", "\r")) else rendered + "\n"


def _encoded(value: str) -> tuple[bytes, bytes]:
    """``value`` as it fills a hole of an HTML template (escaped) and of a text one."""
    text = wire.quoted_printable(value)
    escaped = escape(value)
    return (text if escaped == value else wire.quoted_printable(escaped)), text


def _token_piece(token: str) -> bytes:
    # A token's alphabet (A-Z a-z 0-9 - _ .) needs neither HTML escaping nor encoding.
    return token.encode("ascii") if len(token) <= wire.PIECE_WIDTH else wire.quoted_printable(token)
