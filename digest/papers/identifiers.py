"""One id per work, whichever source it came from.

``arxiv:<id without version>`` when the work has an arXiv id (new-style
``2401.01234`` or old-style ``hep-ph/0601001``), else ``doi:<lower-cased DOI>``,
else ``url:<hash of the feed's guid or link>``. Hugging Face and arXiv records of
the same paper therefore land on the same row.
"""

from __future__ import annotations

import hashlib
import re
from itertools import chain

# New style since 2007 (4 or 5 digits after the dot), and the old archive/number style.
_ARXIV = re.compile(
    r"(?<![\w.-])(?:arxiv:)?"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})"
    r"(?:v(?P<version>\d+))?(?![\d])",
    re.IGNORECASE,
)
_ARXIV_URL = re.compile(
    r"arxiv\.org/(?:abs|pdf|html)/(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})"
    r"(?:v(?P<version>\d+))?",
    re.IGNORECASE,
)
_DOI = re.compile(
    r"(?:https?://(?:dx\.)?doi\.org/|doi:\s*)?(?P<doi>10\.\d{4,9}/\S+)", re.IGNORECASE
)


# The archives of old-style ids (hep-th/9901001): an id of that shape under any
# other name (``/news/1234567`` in a blog URL) is a coincidence, not a paper.
OLD_ARCHIVES = frozenset(
    (
        "acc-phys",
        "adap-org",
        "alg-geom",
        "ao-sci",
        "astro-ph",
        "atom-ph",
        "bayes-an",
        "chao-dyn",
        "chem-ph",
        "cmp-lg",
        "comp-gas",
        "cond-mat",
        "cs",
        "dg-ga",
        "funct-an",
        "gr-qc",
        "hep-ex",
        "hep-lat",
        "hep-ph",
        "hep-th",
        "math",
        "math-ph",
        "mtrl-th",
        "nlin",
        "nucl-ex",
        "nucl-th",
        "patt-sol",
        "physics",
        "plasm-ph",
        "q-alg",
        "q-bio",
        "q-fin",
        "quant-ph",
        "solv-int",
        "stat",
        "supr-con",
    )
)


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """The arXiv id (without version) and version found in ``text``: a bare id, an
    ``oai:arXiv.org:`` guid or an arxiv.org URL. ``None`` when there is none."""
    for match in chain(_ARXIV_URL.finditer(text), _ARXIV.finditer(text)):
        identifier = match.group("id")
        if "/" in identifier:
            # Old-style archive names are lower case; the subject class keeps its case.
            archive, number = identifier.split("/")
            head, _, subject = archive.partition(".")
            if head.lower() not in OLD_ARCHIVES:
                continue
            identifier = f"{head.lower()}{'.' + subject.upper() if subject else ''}/{number}"
        version = match.group("version")
        return identifier, int(version) if version else None
    return None


def normalise_doi(text: str) -> str | None:
    match = _DOI.search(text.strip())
    return match.group("doi").rstrip(".,;").lower() if match else None


def arxiv_canonical_id(arxiv_id: str) -> str:
    return f"arxiv:{arxiv_id}"


def canonical_id(
    *, arxiv_id: str | None = None, doi: str | None = None, fallback: str | None = None
) -> str | None:
    """The canonical id from the best identifier available, or ``None``."""
    if arxiv_id:
        return arxiv_canonical_id(arxiv_id)
    if doi and (normalised := normalise_doi(doi)):
        return f"doi:{normalised}"
    if fallback and fallback.strip():
        digest = hashlib.sha256(fallback.strip().encode("utf-8")).hexdigest()[:32]
        return f"url:{digest}"
    return None
