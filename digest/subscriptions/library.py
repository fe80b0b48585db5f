"""A reader's own papers as "more like this": pasted arXiv ids or URLs, BibTeX, RIS.

What a reader pastes or uploads is read into :class:`Reference` values (an arXiv
id when one is found, else a DOI and/or title), with a line-numbered problem for
each entry not understood; a problem is reported, never fatal. Importing them
records one "more like this" per paper found (:mod:`digest.subscriptions.feedback`),
so the ranker's profile of the reader follows their library.

BibTeX and RIS are read here rather than by ``bibtexparser`` / ``rispy``: only a
handful of fields matter (eprint, archivePrefix, url, doi, title, journal; UR,
DO, TI), the problems must name the line they are on, and neither package is a
dependency yet. The BibTeX reader follows the grammar BibTeX itself accepts:
``@type{key, name = {…} # "…" # 123, …}`` with ``(…)`` as the alternative
delimiters and balanced braces inside values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.db.limits import IN_LIST_CHUNK
from digest.papers.identifiers import arxiv_canonical_id, normalise_doi, parse_arxiv_id
from digest.papers.models import Paper
from digest.papers.sources import Item, PaperRecord, SourceError
from digest.papers.storage import store_papers
from digest.subscriptions.feedback import record_feedback
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber

# References read per import: two requests to the arXiv API at most.
MAX_REFERENCES = 200
# Ids asked of the arXiv API per request (its documented page size for id lists).
ARXIV_IDS_PER_REQUEST = 100
# A BibTeX or RIS file larger than this is not read (the web form's cap too).
MAX_UPLOAD_BYTES = 1_000_000
# The name stored papers are recorded under, as an ingest records its source's.
SOURCE_NAME = "arxiv-api"

# Gets the papers of these arXiv ids (without versions) from the arXiv API.
FetchArxiv = Callable[[Sequence[str]], Iterable[Item]]

_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(?P<id>.+)$", re.IGNORECASE)
# "arXiv:2401.01234" or "arXiv preprint arXiv:hep-th/9901001" in a journal or note field.
_PREFIXED_ARXIV = re.compile(r"arxiv\s*:\s*(?P<id>\S+)", re.IGNORECASE)
_BIBTEX_START = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_RIS_TAG = re.compile(r"^(?P<tag>[A-Z][A-Z0-9])  -(?: (?P<value>.*))?$")
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Reference:
    """One paper of the reader's library, as its entry named it."""

    line: int
    arxiv_id: str | None = None
    doi: str | None = None
    title: str | None = None
    # Which of several texts read together ("file"), as for a Problem.
    where: str = ""

    @property
    def place(self) -> str:
        return f"{self.where + ' ' if self.where else ''}line {self.line}"

    def describe(self) -> str:
        if self.arxiv_id:
            return f"arXiv:{self.arxiv_id}"
        if self.doi:
            return f"doi:{self.doi}"
        return f"“{self.title}”"


@dataclass(frozen=True)
class Problem:
    """An entry that was not understood, by the line it starts on."""

    line: int
    message: str
    # Which of several texts read together ("file"), when there were several.
    where: str = ""

    def __str__(self) -> str:
        return f"{self.where + ' ' if self.where else ''}line {self.line}: {self.message}"


@dataclass
class ParsedLibrary:
    references: list[Reference] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_library(text: str) -> ParsedLibrary:
    """References in pasted text, a BibTeX file or a RIS file (told apart by shape)."""
    text = text.lstrip("\ufeff")
    if _BIBTEX_START.search(text):
        return parse_bibtex(text)
    if any(_RIS_TAG.match(line) and line.startswith("TY") for line in text.splitlines()):
        return parse_ris(text)
    return parse_pasted(text)


def parse_libraries(pasted: str, upload: bytes | None) -> ParsedLibrary:
    """What a form sent: pasted text and an uploaded file, each read on its own
    (a problem in the file names the file's line)."""
    parsed = parse_library(pasted)
    if upload:
        from_file = parse_library(decode_upload(upload))
        parsed.references.extend(replace(r, where="file") for r in from_file.references)
        parsed.problems.extend(Problem(p.line, p.message, where="file") for p in from_file.problems)
    return parsed


def decode_upload(data: bytes) -> str:
    # Reference managers write UTF-8; older BibTeX files are often Latin-1.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_pasted(text: str) -> ParsedLibrary:
    """arXiv ids, arxiv.org URLs and DOIs, separated by lines, spaces or commas."""
    parsed = ParsedLibrary()
    for number, line in enumerate(text.splitlines(), start=1):
        unknown: list[str] = []
        for token in _SEPARATORS.split(line):
            if token == "":
                continue
            reference = _reference_of_identifier(token, number)
            if reference is None:
                unknown.append(token)
            else:
                parsed.references.append(reference)
        if unknown:
            shown = ", ".join(_clip(t, 60) for t in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            parsed.problems.append(
                Problem(number, f"not an arXiv id, arXiv URL or DOI: {shown}{more}")
            )
    return parsed


def _reference_of_identifier(token: str, line: int) -> Reference | None:
    token = token.strip("<>()[]\"'")
    doi = normalise_doi(token)
    if doi is not None:
        arxiv_id = _arxiv_id_of_doi(doi)
        return Reference(line, arxiv_id=arxiv_id) if arxiv_id else Reference(line, doi=doi)
    lowered = token.lower()
    if "://" in token and "arxiv.org/" not in lowered:
        # Only arxiv.org URLs name arXiv papers; another site's path can look like an id.
        return None
    found = parse_arxiv_id(token)
    if found is None:
        return None
    return Reference(line, arxiv_id=found[0])


def _arxiv_id_of_doi(doi: str) -> str | None:
    match = _ARXIV_DOI.match(doi)
    if match is None:
        return None
    found = parse_arxiv_id(match.group("id"))
    return found[0] if found else None


def _arxiv_id_in(text: str, *, prefixed_only: bool) -> str | None:
    """An arXiv id in a field: an arxiv.org URL, an arXiv DOI, ``arXiv:<id>``, or
    (``prefixed_only`` off) a bare id."""
    if "arxiv.org/" in text.lower():
        found = parse_arxiv_id(text)
        return found[0] if found else None
    doi = normalise_doi(text)
    if doi is not None:
        return _arxiv_id_of_doi(doi)
    match = _PREFIXED_ARXIV.search(text)
    if match is not None:
        found = parse_arxiv_id(match.group("id"))
        return found[0] if found else None
    if prefixed_only:
        return None
    found = parse_arxiv_id(text.strip())
    return found[0] if found else None


# -- BibTeX --------------------------------------------------------------------


class _BibtexSyntaxError(ValueError):
    pass


def parse_bibtex(text: str) -> ParsedLibrary:
    """The entries of a BibTeX file; one that cannot be read is a problem at its line,
    and reading resumes at the next ``@`` that starts a line."""
    parsed = ParsedLibrary()
    reader = _BibtexReader(text)
    while (start := reader.next_entry()) is not None:
        line = reader.line_at(start)
        try:
            kind, fields = reader.entry()
        except _BibtexSyntaxError as exc:
            parsed.problems.append(Problem(line, f"BibTeX entry not understood ({exc})"))
            reader.skip_to_next_entry()
            continue
        if kind in ("comment", "preamble", "string"):
            continue
        reference = _reference_of_bibtex(fields, line)
        if reference is None:
            parsed.problems.append(Problem(line, f"@{kind} entry has no arXiv id, DOI or title"))
        else:
            parsed.references.append(reference)
    return parsed


def _reference_of_bibtex(fields: dict[str, str], line: int) -> Reference | None:
    arxiv_id: str | None = None
    eprint = fields.get("eprint", "")
    prefix = fields.get("archiveprefix", fields.get("eprinttype", "")).strip().lower()
    if eprint and prefix in ("", "arxiv"):
        arxiv_id = _arxiv_id_in(eprint, prefixed_only=False)
    for name in ("url", "doi", "journal", "note", "howpublished", "volume"):
        if arxiv_id is None and fields.get(name):
            arxiv_id = _arxiv_id_in(fields[name], prefixed_only=name != "url")
    doi = normalise_doi(fields.get("doi", "")) if fields.get("doi") else None
    title = _clean_title(fields.get("title", ""))
    if arxiv_id is None and doi is None and title == "":
        return None
    return Reference(line, arxiv_id=arxiv_id, doi=doi, title=title or None)


class _BibtexReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_at(self, position: int) -> int:
        low, high = 0, len(self._line_starts)
        while high - low > 1:
            middle = (low + high) // 2
            if self._line_starts[middle] <= position:
                low = middle
            else:
                high = middle
        return low + 1

    def next_entry(self) -> int | None:
        # Text between entries is a comment to BibTeX; an "@" inside it (an address)
        # starts nothing, so only one that begins a line is taken for an entry.
        match = _BIBTEX_START.search(self.text, self.position)
        if match is None:
            return None
        self.position = self.text.index("@", match.start())
        return self.position

    def skip_to_next_entry(self) -> None:
        # Past the "@" of the entry not understood, to the line after its start.
        newline = self.text.find("\n", self.position)
        self.position = len(self.text) if newline == -1 else newline + 1

    def entry(self) -> tuple[str, dict[str, str]]:
        self.position += 1  # the "@"
        kind = self._name().lower()
        if kind == "":
            raise _BibtexSyntaxError("no entry type after @")
        self._space()
        opener = self._peek()
        if opener not in "{(" or opener == "":
            raise _BibtexSyntaxError(f"@{kind} is not followed by {{ or (")
        closer = "}" if opener == "{" else ")"
        self.position += 1
        if kind in ("comment", "preamble", "string"):
            self.position -= 1
            self._balanced(opener, closer)
            return kind, {}
        self._space()
        key_end = self._find_any(",", closer)
        if key_end is None:
            raise _BibtexSyntaxError("the entry never ends")
        self.position = key_end
        fields: dict[str, str] = {}
        while True:
            self._space()
            char = self._peek()
            if char == closer:
                self.position += 1
                return kind, fields
            if char != ",":
                raise _BibtexSyntaxError(f"expected “,” or “{closer}”, found {_clip(char, 10)!r}")
            self.position += 1
            self._space()
            if self._peek() == closer:
                continue
            name = self._name().lower()
            if name == "":
                raise _BibtexSyntaxError("a field has no name")
            self._space()
            if self._peek() != "=":
                raise _BibtexSyntaxError(f"field “{_clip(name, 40)}” has no “=”")
            self.position += 1
            fields[name] = self._value(closer)

    def _value(self, closer: str) -> str:
        parts: list[str] = []
        while True:
            self._space()
            char = self._peek()
            if char == "{":
                parts.append(self._balanced("{", "}")[1:-1])
            elif char == '"':
                parts.append(self._quoted())
            elif char != "" and (char.isalnum() or char in "_-.:+/"):
                # A number or a @string macro: kept as written.
                parts.append(self._name())
            else:
                raise _BibtexSyntaxError("a field has no value")
            self._space()
            if self._peek() != "#":
                return "".join(parts)
            self.position += 1

    def _balanced(self, opener: str, closer: str) -> str:
        start = self.position
        depth = 0
        for index in range(start, len(self.text)):
            char = self.text[index]
            if char == opener:
                depth += 1
            elif char == closer:
                depth -= 1
                if depth == 0:
                    self.position = index + 1
                    return self.text[start : index + 1]
        raise _BibtexSyntaxError(f"a “{opener}” is never closed")

    def _quoted(self) -> str:
        start = self.position + 1
        depth = 0
        for index in range(start, len(self.text)):
            char = self.text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == '"' and depth == 0:
                self.position = index + 1
                return self.text[start:index]
        raise _BibtexSyntaxError("a quoted value is never closed")

    def _find_any(self, *chars: str) -> int | None:
        for index in range(self.position, len(self.text)):
            if self.text[index] in chars:
                return index
            if self.text[index] == "\n" and self.text[index + 1 : index + 2] == "@":
                return None
        return None

    def _name(self) -> str:
        start = self.position
        while self.position < len(self.text) and (
            self.text[self.position].isalnum() or self.text[self.position] in "_-.:+/"
        ):
            self.position += 1
        return self.text[start : self.position]

    def _space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def _peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""


def _clean_title(raw: str) -> str:
    # Braces protect capitals from the style, and a few commands are accents; the
    # title is only compared (normalised) and shown in a "not found" list.
    without = re.sub(r"\\[a-zA-Z]+\s*|\\.|[{}]", "", raw)
    return " ".join(without.split())


# -- RIS -----------------------------------------------------------------------

# Tags that hold the work's links, and fields where an "arXiv:<id>" shows up.
_RIS_LINKS = ("UR", "L1", "L2", "L3", "LK")
_RIS_NOTES = ("DO", "JO", "JF", "T2", "N1", "M1", "M3", "AN", "ID", "ST")
_RIS_TITLES = ("TI", "T1", "CT", "BT")


def parse_ris(text: str) -> ParsedLibrary:
    """The records of a RIS file (``TY  - `` … ``ER  - ``)."""
    parsed = ParsedLibrary()
    record: dict[str, list[str]] | None = None
    record_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.strip() == "":
            continue
        match = _RIS_TAG.match(line.lstrip("\ufeff"))
        if match is None:
            if record is not None:
                # A value continued on the next line (some exporters wrap abstracts).
                continue
            parsed.problems.append(Problem(number, f"not a RIS line: {_clip(line, 60)}"))
            continue
        tag, value = match.group("tag"), (match.group("value") or "").strip()
        if tag == "TY":
            if record is not None:
                parsed.problems.append(Problem(record_line, "RIS record has no ER line"))
                _add_ris_record(parsed, record, record_line)
            record, record_line = {}, number
            continue
        if record is None:
            parsed.problems.append(Problem(number, f"{tag} line outside a record (no TY before)"))
            continue
        if tag == "ER":
            _add_ris_record(parsed, record, record_line)
            record = None
            continue
        record.setdefault(tag, []).append(value)
    if record is not None:
        parsed.problems.append(Problem(record_line, "RIS record has no ER line"))
        _add_ris_record(parsed, record, record_line)
    return parsed


def _add_ris_record(parsed: ParsedLibrary, record: dict[str, list[str]], line: int) -> None:
    arxiv_id: str | None = None
    for tag in (*_RIS_LINKS, *_RIS_NOTES):
        for value in record.get(tag, []):
            if arxiv_id is None:
                arxiv_id = _arxiv_id_in(value, prefixed_only=tag not in _RIS_LINKS)
    doi = next((d for v in record.get("DO", []) if (d := normalise_doi(v))), None)
    title = next((" ".join(v.split()) for t in _RIS_TITLES for v in record.get(t, []) if v), "")
    if arxiv_id is None and doi is None and title == "":
        parsed.problems.append(Problem(line, "RIS record has no arXiv id, DOI or title"))
        return
    parsed.references.append(Reference(line, arxiv_id=arxiv_id, doi=doi, title=title or None))


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


# -- Importing -----------------------------------------------------------------


@dataclass
class ImportSummary:
    """What an import did, for the page or the command to say."""

    added: list[Paper] = field(default_factory=list)
    already: int = 0
    not_found: list[Reference] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # References past MAX_REFERENCES, not read.
    over_limit: int = 0
    # Why arXiv could not be asked, when it could not.
    fetch_error: str | None = None

    def lines(self) -> list[str]:
        said = [
            f"{len(self.added)} paper(s) added to your references"
            + (f", {self.already} already there" if self.already else "")
        ]
        if self.not_found:
            said.append(
                f"{len(self.not_found)} not found: "
                + "; ".join(f"{r.place} {_clip(r.describe(), 80)}" for r in self.not_found)
            )
        if self.fetch_error:
            said.append(f"arXiv could not be asked: {self.fetch_error}")
        if self.over_limit:
            said.append(
                f"{self.over_limit} reference(s) past the first {MAX_REFERENCES} were not read"
            )
        said.extend(f"not understood: {problem}" for problem in self.problems)
        return said


def import_library(
    session: Session,
    subscriber: Subscriber,
    parsed: ParsedLibrary,
    *,
    fetch: FetchArxiv,
    now: datetime,
) -> ImportSummary:
    """Record each paper of ``parsed`` as "more like this" for ``subscriber``.

    arXiv ids already stored are used as they are; the others are fetched through
    ``fetch`` (the arXiv API source) and stored like an ingest's papers. References
    without an arXiv id are matched by DOI, then by exact (normalised) title, among
    stored papers. Importing the same library again adds nothing.
    """
    summary = ImportSummary(problems=list(parsed.problems))
    references = _distinct(parsed.references)
    if len(references) > MAX_REFERENCES:
        summary.over_limit = len(references) - MAX_REFERENCES
        references = references[:MAX_REFERENCES]

    wanted = [arxiv_canonical_id(r.arxiv_id) for r in references if r.arxiv_id]
    known = _paper_ids_by_canonical(session, wanted)
    missing = [r.arxiv_id for r in references if r.arxiv_id and _canonical(r) not in known]
    if missing:
        try:
            records = [item for item in fetch(missing) if isinstance(item, PaperRecord)]
        except SourceError as exc:
            summary.fetch_error = str(exc)
            records = []
        _store_as_published(session, records, now=now)
        known.update(_paper_ids_by_canonical(session, [r.canonical_id for r in records]))

    liked = set(
        session.scalars(
            select(Feedback.paper_id).where(
                Feedback.subscriber_id == subscriber.id, Feedback.kind == FeedbackKind.MORE
            )
        )
    )
    unresolved = [r for r in references if not (r.arxiv_id and _canonical(r) in known)]
    by_doi = _paper_ids_by_doi(session, sorted({r.doi for r in unresolved if r.doi}))
    by_title = _paper_ids_by_title(
        session,
        sorted({normalised_title(r.title) for r in unresolved if r.title and r.doi not in by_doi}),
    )
    for reference in references:
        paper_id = known.get(_canonical(reference)) if reference.arxiv_id else None
        if paper_id is None and reference.doi:
            paper_id = by_doi.get(reference.doi)
        if paper_id is None and reference.title:
            paper_id = by_title.get(normalised_title(reference.title))
        if paper_id is None:
            summary.not_found.append(reference)
            continue
        if paper_id in liked:
            summary.already += 1
            continue
        summary.added.append(
            record_feedback(session, subscriber, paper_id, FeedbackKind.MORE, now=now)
        )
        liked.add(paper_id)
    return summary


def missing_arxiv_ids(session: Session, parsed: ParsedLibrary) -> list[str]:
    """The arXiv ids of ``parsed`` (within the limit) that no stored paper has: what
    an import will ask arXiv for. Read first, so that a web request can ask arXiv
    outside its transaction (see :func:`prefetched`)."""
    references = _distinct(parsed.references)[:MAX_REFERENCES]
    wanted = [_canonical(r) for r in references if r.arxiv_id]
    known = _paper_ids_by_canonical(session, wanted)
    return [r.arxiv_id for r in references if r.arxiv_id and _canonical(r) not in known]


def prefetched(fetch: FetchArxiv, arxiv_ids: Sequence[str]) -> FetchArxiv:
    """Asks arXiv now, and answers an import's later request with what it said
    (or the error it gave), so no database transaction waits on arXiv."""
    error: SourceError | None = None
    items: list[Item] = []
    try:
        items = list(fetch(arxiv_ids)) if arxiv_ids else []
    except SourceError as exc:
        error = exc

    def replay(asked: Sequence[str]) -> Iterable[Item]:
        if error is not None:
            raise error
        return items

    return replay


def references_of(session: Session, subscriber: Subscriber) -> list[Paper]:
    """The papers the reader asked more like, from their library or their digests."""
    return list(
        session.scalars(
            select(Paper)
            .join(Feedback, Feedback.paper_id == Paper.id)
            .where(Feedback.subscriber_id == subscriber.id, Feedback.kind == FeedbackKind.MORE)
            .order_by(Feedback.created_at, Paper.id)
        )
    )


def _store_as_published(session: Session, records: list[PaperRecord], *, now: datetime) -> None:
    """Store papers as first seen when they were published, not now.

    The ranking window is "first seen in the last days": a 2006 paper from someone's
    library stored as seen today would be news in every reader's next digest.
    """
    by_day: dict[datetime, list[PaperRecord]] = {}
    for record in records:
        day = now
        if record.published_on is not None:
            day = min(now, datetime.combine(record.published_on, time(), tzinfo=UTC))
        by_day.setdefault(day, []).append(record)
    for day, stored in sorted(by_day.items()):
        store_papers(session, stored, source=SOURCE_NAME, now=day)


def _canonical(reference: Reference) -> str:
    return arxiv_canonical_id(reference.arxiv_id or "")


def _distinct(references: list[Reference]) -> list[Reference]:
    seen: set[tuple[str | None, str | None, str | None]] = set()
    kept: list[Reference] = []
    for reference in references:
        key = (
            (reference.arxiv_id, None, None)
            if reference.arxiv_id
            else (None, reference.doi, normalised_title(reference.title or ""))
        )
        if key not in seen:
            seen.add(key)
            kept.append(reference)
    return kept


def _paper_ids_by_canonical(session: Session, canonical_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for offset in range(0, len(canonical_ids), IN_LIST_CHUNK):
        chunk = canonical_ids[offset : offset + IN_LIST_CHUNK]
        found.update(
            (canonical_id, paper_id)
            for canonical_id, paper_id in session.execute(
                select(Paper.canonical_id, Paper.id).where(Paper.canonical_id.in_(chunk))
            )
        )
    return found


def normalised_title(title: str) -> str:
    """Case, punctuation and LaTeX braces aside: what two spellings of a title share."""
    return " ".join(re.findall(r"\w+", title.casefold()))


def _paper_ids_by_doi(session: Session, dois: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for offset in range(0, len(dois), IN_LIST_CHUNK):
        chunk = dois[offset : offset + IN_LIST_CHUNK]
        by_canonical = {f"doi:{doi}": doi for doi in chunk}
        for paper_id, doi, canonical_id in session.execute(
            select(Paper.id, Paper.doi, Paper.canonical_id)
            .where(Paper.doi.in_(chunk) | Paper.canonical_id.in_(list(by_canonical)))
            .order_by(Paper.id)
        ):
            key = doi if doi in chunk else by_canonical.get(canonical_id)
            if key is not None:
                found.setdefault(key, paper_id)
    return found


# Titles looked for per query: each is one LIKE of a scan over the papers' titles.
_TITLES_PER_QUERY = 50
_TITLE_CANDIDATES = 5000


def _paper_ids_by_title(session: Session, titles: list[str]) -> dict[str, int]:
    """Stored papers whose normalised title is one of ``titles`` (normalised).

    No index serves a title search, so titles are looked for fifty to a query, one
    scan each; LIKE on the longest words (in their order) narrows the candidates and
    equality is decided here."""
    found: dict[str, int] = {}
    wanted = [t for t in titles if len(t.split()) >= 2]  # "Introduction" proves nothing
    for offset in range(0, len(wanted), _TITLES_PER_QUERY):
        chunk = set(wanted[offset : offset + _TITLES_PER_QUERY])
        patterns = [func.lower(Paper.title).like(_title_pattern(t)) for t in sorted(chunk)]
        for paper_id, title in session.execute(
            select(Paper.id, Paper.title)
            .where(or_(*patterns))
            .order_by(Paper.id)
            .limit(_TITLE_CANDIDATES)
        ):
            normalised = normalised_title(title)
            if normalised in chunk:
                found.setdefault(normalised, paper_id)
    return found


def _title_pattern(title: str) -> str:
    words = title.split()
    longest = set(sorted(range(len(words)), key=lambda i: len(words[i]), reverse=True)[:3])
    return "%" + "%".join(w for i, w in enumerate(words) if i in longest) + "%"
