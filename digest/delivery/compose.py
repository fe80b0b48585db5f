"""Composing one reader's digest email from their picks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from jinja2 import Environment

from digest.delivery.schedule import edition_label
from digest.mail.identity import SiteIdentity
from digest.mail.message import ListUnsubscribe, build_message
from digest.mail.rendering import render_email
from digest.papers.models import Paper
from digest.ranking.picks import Pick
from digest.subscriptions.links import Links
from digest.subscriptions.models import Frequency, Subscriber

SUMMARY_WORDS = 70


def summarise(abstract: str, words: int = SUMMARY_WORDS) -> str:
    parts = abstract.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(",;:") + " …"


@dataclass(frozen=True)
class Composed:
    message: EmailMessage
    message_id: str


class DigestComposer:
    """Holds what is shared by every reader of an edition: templates, signer, paper texts."""

    def __init__(self, environment: Environment, links: Links, site: SiteIdentity) -> None:
        self.environment = environment
        self.links = links
        self.site = site
        self._papers: dict[int, dict[str, Any]] = {}

    def unsubscribe_links(self, subscriber: Subscriber) -> ListUnsubscribe:
        return self.links.unsubscribe(subscriber)

    def _paper_context(self, paper: Paper) -> dict[str, Any]:
        # Per paper, not per reader: a paper appears in many readers' digests.
        cached = self._papers.get(paper.id)
        if cached is None:
            cached = {
                # Converted from LaTeX once, at ingest.
                "title": paper.shown_title,
                "url": paper.url,
                "discuss_url": paper.links.get("hf_search") or paper.links.get("hf", ""),
                "summary": summarise(paper.shown_abstract),
                "published": f"{paper.published_on:%d %b %Y}" if paper.published_on else "",
                "author_count": paper.author_count or len(paper.authors) or None,
            }
            self._papers[paper.id] = cached
        return cached

    def compose(
        self, subscriber: Subscriber, picks: list[Pick], *, edition: str, now: datetime
    ) -> Composed:
        unsubscribe = self.unsubscribe_links(subscriber)
        context = {
            "site_name": self.site.name,
            "email": subscriber.email,
            "interests": subscriber.interests,
            "frequency_label": ("weekly" if subscriber.frequency == Frequency.WEEKLY else "daily"),
            "edition_label": edition_label(edition),
            "unsubscribe_url": unsubscribe.https_url,
            "preferences_url": self.links.preferences(subscriber),
            "picks": [
                {
                    **self._paper_context(pick.paper),
                    "reason": pick.reason,
                    "more_url": self.links.feedback(subscriber, pick.paper.id, "more"),
                    "fewer_url": self.links.feedback(subscriber, pick.paper.id, "fewer"),
                }
                for pick in picks
            ],
        }
        rendered = render_email(self.environment, "digest", context)
        message = build_message(
            rendered,
            to=subscriber.email,
            from_address=self.site.from_address,
            message_domain=self.site.from_domain,
            date=now,
            unsubscribe=unsubscribe,
            list_id=self.site.digest_list_id,
        )
        return Composed(message=message, message_id=str(message["Message-ID"]))
