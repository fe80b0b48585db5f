"""Atom feeds (RFC 4287), built as XML so that any title or summary stays well-formed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class Entry:
    # A permanent, unique IRI (RFC 4287 4.2.6): a tag URI, never a URL with a token.
    id: str
    title: str
    updated: datetime
    link: str
    summary: str = ""
    # HTML shown by the feed reader, escaped into the element (type="html").
    content_html: str = ""
    authors: Sequence[str] = ()


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    # The feed's own URL (rel="self") and the page it mirrors (rel="alternate").
    self_url: str
    alternate_url: str
    entries: Sequence[Entry]
    subtitle: str = ""
    author: str = ""


def render_feed(feed: Feed, *, now: datetime) -> bytes:
    root = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    _text(root, "id", feed.id)
    _text(root, "title", feed.title)
    if feed.subtitle:
        _text(root, "subtitle", feed.subtitle)
    # RFC 4287 4.2.15: when the feed last changed; with no entries, now.
    updated = max((e.updated for e in feed.entries), default=now)
    _text(root, "updated", _time(updated))
    _link(root, feed.self_url, "self", "application/atom+xml")
    _link(root, feed.alternate_url, "alternate", "text/html")
    # RFC 4287 4.1.1: a feed without an author needs one in every entry.
    author = etree.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", feed.author or feed.title)
    for entry in feed.entries:
        element = etree.SubElement(root, f"{{{ATOM}}}entry")
        _text(element, "id", entry.id)
        _text(element, "title", entry.title)
        _text(element, "updated", _time(entry.updated))
        _link(element, entry.link, "alternate", "text/html")
        for name in entry.authors:
            _text(etree.SubElement(element, f"{{{ATOM}}}author"), "name", name)
        if entry.summary:
            _text(element, "summary", entry.summary)
        if entry.content_html:
            _text(element, "content", entry.content_html).set("type", "html")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))


def tag_uri(domain: str, day: str, specific: str) -> str:
    """A tag URI (RFC 4151): ``tag:example.org,2026-12-01:digest/42``."""
    return f"tag:{domain},{day}:{specific}"


def _text(parent: etree._Element, name: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM}}}{name}")
    # XML 1.0 cannot carry most control characters, whatever a feed gave us.
    element.text = "".join(c for c in value if c in "\t\n\r" or ord(c) >= 0x20)
    return element


def _link(parent: etree._Element, href: str, rel: str, media_type: str) -> None:
    etree.SubElement(parent, f"{{{ATOM}}}link", href=href, rel=rel, type=media_type)


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
