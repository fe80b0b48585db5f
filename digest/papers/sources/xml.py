"""Parsing untrusted XML feeds with lxml, safely and forgivingly.

Never resolves entities, never loads a DTD or touches the network; a document
that declares entities (the billion-laughs bomb, external entities) is refused
outright, because real feeds have no use for them. A document that is not
well-formed (truncated, mis-encoded) is parsed again in libxml2's recovery mode
so that its intact entries are kept; the caller is told what went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from digest.papers.sources import SourceError


@dataclass(frozen=True)
class ParsedXml:
    root: etree._Element
    # Why the document needed recovery; None when it was well-formed.
    problem: str | None = None
    # Recovered and not ending with the root's closing tag: the last entry may be cut.
    truncated: bool = False


def _parser(*, recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=recover,
    )


def parse_feed_xml(body: bytes, *, what: str) -> ParsedXml:
    """The document's root element; :class:`SourceError` when nothing usable is in it."""
    if not body.strip():
        raise SourceError(f"{what} is empty")
    try:
        root = etree.fromstring(body, _parser(recover=False))
        problem = None
    except etree.XMLSyntaxError as exc:
        problem = str(exc)
        if "encoding" in problem.lower() or "utf-8" in problem.lower():
            # Declared UTF-8 but is not: keep what decodes, mark what does not.
            body = body.decode("utf-8", errors="replace").encode("utf-8")
        try:
            recovered = etree.fromstring(body, _parser(recover=True))
        except etree.XMLSyntaxError:
            recovered = None
        if recovered is None:
            raise SourceError(f"{what} is not well-formed XML: {problem}") from exc
        root = recovered
    _refuse_entity_declarations(root, what=what)
    truncated = problem is not None and not _ends_with_closing_tag(body, root)
    return ParsedXml(root, problem, truncated)


def _ends_with_closing_tag(body: bytes, root: etree._Element) -> bool:
    # libxml2's first error depends on where the cut fell (inside a tag, an
    # attribute, text); the missing end of the document is the reliable sign.
    local = etree.QName(root).localname.encode("utf-8")
    return re.search(rb"</(?:[\w.-]+:)?" + re.escape(local) + rb"\s*>\s*$", body) is not None


def _refuse_entity_declarations(root: etree._Element, *, what: str) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise SourceError(f"{what} declares XML entities; refused (entity expansion attack?)")


def text_of(element: etree._Element | None) -> str | None:
    """All text inside ``element`` (entity references left unexpanded are dropped)."""
    if element is None:
        return None
    return "".join(element.itertext())
