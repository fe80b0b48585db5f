"""Parsing untrusted XML feeds with lxml, safely and forgivingly.

Never resolves entities, never loads a DTD or touches the network. A document
may declare entities (some feeds do, for ``&nbsp;`` or by accident): they are
left unexpanded and their references dropped from the text, so an external
entity (``SYSTEM "file:///etc/passwd"``) is never read and the entries beside
it are kept. Entities defined by other entities, the billion-laughs bomb, are
refused outright: nothing would expand them here, but no real feed nests them
and libxml2 itself stops at their amplification. A document that is not
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
        if any(sign in problem.lower() for sign in _EXPANSION_ERRORS):
            # Recovery would give a tree with the entry cut out: refuse the whole.
            raise _expansion_bomb(what) from exc
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
    _refuse_expanding_entities(root, what=what)
    _drop_entity_references(root)
    truncated = problem is not None and not _ends_with_closing_tag(body, root)
    return ParsedXml(root, problem, truncated)


def _ends_with_closing_tag(body: bytes, root: etree._Element) -> bool:
    # libxml2's first error depends on where the cut fell (inside a tag, an
    # attribute, text); the missing end of the document is the reliable sign.
    local = etree.QName(root).localname.encode("utf-8")
    return re.search(rb"</(?:[\w.-]+:)?" + re.escape(local) + rb"\s*>\s*$", body) is not None


# libxml2's words for an entity that expands too much (2.11+) or into itself.
_EXPANSION_ERRORS = ("amplification", "entity reference loop", "detected an entity")
# A reference to another entity inside an entity's replacement text; character
# references (``&#160;``) are already replaced there.
_ENTITY_REFERENCE = re.compile(r"[&%][A-Za-z_:][\w.:-]*;")


def _expansion_bomb(what: str) -> SourceError:
    return SourceError(
        f"{what} declares XML entities that expand into other entities "
        "(an entity expansion bomb, such as billion laughs); refused"
    )


def _refuse_expanding_entities(root: etree._Element, *, what: str) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is None:
        return
    for entity in dtd.iterentities():
        if entity.content and _ENTITY_REFERENCE.search(entity.content):
            raise _expansion_bomb(what)


def _drop_entity_references(root: etree._Element) -> None:
    """Remove every unexpanded ``&name;`` from the tree, keeping the text after it:
    the callers read text, and feedparser, given the tree re-serialised, would meet
    references to entities it has no declaration for."""
    for reference in list(root.iter(etree.Entity)):
        parent = reference.getparent()
        if parent is None:
            continue
        tail = reference.tail or ""
        previous = reference.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(reference)


def text_of(element: etree._Element | None) -> str | None:
    """All text inside ``element``."""
    if element is None:
        return None
    return "".join(element.itertext())
