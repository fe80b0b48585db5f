"""Build ``digest/papers/data/sample_papers.json`` from the Daily Papers seed listings.

Reads ``papers_000.json`` (title + abstract only) and ``papers_002.json``
(title, abstract, author count, publication date, upvotes) from a seeds
directory, normalises whitespace, derives a stable ``canonical_id`` and
search links from the title, drops cross-listing duplicates (keeping the
record with more metadata) and writes the result as JSON.

Nothing is invented: fields the seed does not carry are ``null``, and dates
shown without a year (e.g. ``"Apr 29"``) are ``null`` rather than guessed.

Usage (from the repository root)::

    .venv/bin/python scripts/build_sample_papers.py [SEEDS_DIR] [--output PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"
DEFAULT_OUTPUT = REPO_ROOT / "digest" / "papers" / "data" / "sample_papers.json"
SEED_FILES: tuple[str, ...] = ("papers_000.json", "papers_002.json")

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_FULL_DATE = re.compile(r"^([A-Z][a-z]{2}) (\d{1,2}), (\d{4})$")
_LISTING_ID = re.compile(r"^papers_(\d+)$")


class Links(TypedDict):
    """Search links derived from a paper title."""

    arxiv_search: str
    hf_search: str


class Paper(TypedDict):
    """One output record."""

    canonical_id: str
    title: str
    abstract: str
    author_count: int | None
    published: str | None
    upvotes: int | None
    listing: str
    links: Links


def collapse_ws(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def canonical_id(title: str) -> str:
    """Return ``seed:`` + 16 hex chars of sha256 of the normalised title."""
    normalised = collapse_ws(title).casefold()
    return "seed:" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:16]


def parse_published(raw: object) -> str | None:
    """Turn ``"Jul 15, 2024"`` into ``"2024-07-15"``; ``None`` if no full date."""
    if not isinstance(raw, str):
        return None
    match = _FULL_DATE.match(collapse_ws(raw))
    if match is None or match.group(1) not in _MONTHS:
        return None
    try:
        day = date(int(match.group(3)), _MONTHS[match.group(1)], int(match.group(2)))
    except ValueError:  # e.g. "Feb 30, 2024"
        return None
    return day.isoformat()


def optional_int(item: dict[str, Any], key: str, where: str) -> int | None:
    """Return ``item[key]`` as an int, ``None`` if absent; reject other types."""
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{where}: {key!r} should be an int, got {value!r}"
        raise TypeError(msg)
    return value


def required_text(item: dict[str, Any], key: str, where: str) -> str:
    """Return the whitespace-collapsed ``item[key]``; fail if missing or empty."""
    value = item.get(key)
    if not isinstance(value, str) or not collapse_ws(value):
        msg = f"{where}: missing or empty {key!r}"
        raise ValueError(msg)
    return collapse_ws(value)


def make_links(title: str) -> Links:
    """Build arXiv and Hugging Face title-search URLs."""
    return {
        "arxiv_search": "https://arxiv.org/search/?"
        + urlencode({"query": title, "searchtype": "title"}),
        "hf_search": "https://huggingface.co/papers?" + urlencode({"q": title}),
    }


def information(paper: Paper) -> int:
    """Count how many optional metadata fields are filled in."""
    return sum(paper[key] is not None for key in ("author_count", "published", "upvotes"))


def load_listing(path: Path) -> tuple[str, dict[str, Any], list[Paper]]:
    """Read one seed file and return (listing id, header, normalised papers)."""
    match = _LISTING_ID.match(path.stem)
    if match is None:
        msg = f"{path.name}: expected a name like papers_000.json"
        raise ValueError(msg)
    listing = match.group(1)
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data.get("papers")
    if not isinstance(items, list):
        msg = f"{path.name}: no 'papers' list"
        raise TypeError(msg)
    papers: list[Paper] = []
    for index, item in enumerate(items):
        where = f"{path.name}[{index}]"
        if not isinstance(item, dict):
            msg = f"{where}: expected an object"
            raise TypeError(msg)
        title = required_text(item, "title", where)
        papers.append(
            {
                "canonical_id": canonical_id(title),
                "title": title,
                "abstract": required_text(item, "abstract", where),
                "author_count": optional_int(item, "num_authors", where),
                "published": parse_published(item.get("published")),
                "upvotes": optional_int(item, "upvotes", where),
                "listing": listing,
                "links": make_links(title),
            },
        )
    header = {"source": data.get("source"), "listing": data.get("listing")}
    return listing, header, papers


def deduplicate(papers: list[Paper]) -> tuple[list[Paper], list[Paper]]:
    """Keep one record per canonical_id (most metadata; first seen on ties).

    Input order must be (listing, original order); the survivors keep it.
    Returns (kept, dropped).
    """
    best: dict[str, int] = {}
    for position, paper in enumerate(papers):
        current = best.get(paper["canonical_id"])
        if current is None or information(paper) > information(papers[current]):
            best[paper["canonical_id"]] = position
    keep = set(best.values())
    kept = [p for i, p in enumerate(papers) if i in keep]
    dropped = [p for i, p in enumerate(papers) if i not in keep]
    return kept, dropped


def describe(headers: dict[str, dict[str, Any]], dropped: list[Paper]) -> str:
    """Write the provenance note stored in the output file."""
    sources = "; ".join(
        f"listing {listing!r} = papers_{listing}.json "
        f"(from {header['source']}: {header['listing']})"
        for listing, header in headers.items()
    )
    return (
        "Sample papers built by scripts/build_sample_papers.py from the Daily "
        f"Papers seed listings: {sources}. Title and abstract are copied with "
        "whitespace collapsed (LaTeX/backslashes kept as in the seed). "
        "canonical_id = 'seed:' + first 16 hex of sha256(casefolded, "
        "whitespace-collapsed title). author_count, published and upvotes come "
        "only from seeds that carry them (num_authors, published, upvotes) and "
        "are null otherwise; published is ISO YYYY-MM-DD only when the seed "
        "shows a full date, null for dates shown without a year. upvotes is "
        "the seed's value as-is (0 where the listing showed no count). links "
        "are title-search URLs derived from the title, not verified "
        f"identifiers. {len(dropped)} duplicate(s) across listings dropped, "
        "keeping the record with more metadata. Sorted by listing, then seed "
        "order."
    )


def main(argv: list[str] | None = None) -> int:
    """Build the sample file; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "seeds_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_SEEDS_DIR,
        help=f"directory holding {', '.join(SEED_FILES)} (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the JSON (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    seeds_dir: Path = args.seeds_dir
    output: Path = args.output

    headers: dict[str, dict[str, Any]] = {}
    everything: list[Paper] = []
    for name in SEED_FILES:
        listing, header, papers = load_listing(seeds_dir / name)
        headers[listing] = header
        everything.extend(papers)
    everything.sort(key=lambda p: p["listing"])  # stable: keeps seed order

    kept, dropped = deduplicate(everything)
    document = {"description": describe(headers, dropped), "papers": kept}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(document, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )
    print(
        f"wrote {len(kept)} papers to {output} "
        f"({len(everything)} read, {len(dropped)} duplicates dropped)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
