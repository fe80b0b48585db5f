"""Selection: each reader's picks among the candidates, best first, many readers at once.

Readers are scored together, on matrices of readers x candidate papers. For a
reader who said what they want, only the (reader, paper) cells some signal puts
in play are scored (a phrase, a followed author or category, closeness to a paper
they asked more of), so a batch of a hundred thousand readers costs what its
matches cost, not readers x papers; the others get the overall trending list.
Papers already sent or asked fewer of are blocked with their near-duplicates, so
are papers excluded by keyword, and a reader gets one paper per near-duplicate
group. A reader of several interests (phrases; followed authors and followed
categories count as one interest each) gets the best paper of each interest
first, then the rest by final score (:func:`_interest_picks`), so that one busy
topic cannot fill a digest. The result is positions and scores
(:class:`Selected`); the reasons are written afterwards, for the picks kept
(:mod:`digest.ranking.reasons`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from config.ranking import RankingConfig
from digest.ranking.candidates import Candidates, relevance_bar
from digest.ranking.phrases import PhraseTable
from digest.ranking.profiles import Profile
from digest.ranking.semantic import Embedder


@dataclass(frozen=True)
class Choice:
    """A selected candidate for one reader: its position, final score and relevance,
    and the index of the interest phrase it was picked to serve (None: by score)."""

    position: int
    score: float
    relevance: float | None
    serves: int | None = None


@dataclass(frozen=True)
class Selected:
    """Picks of a batch of readers as arrays, grouped by reader, best first."""

    readers: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    # NaN for readers without a personal profile.
    relevance: np.ndarray
    # The reader's phrase (index into ``Profile.phrases``) a pick serves, -1 for none.
    serves: np.ndarray

    def __len__(self) -> int:
        return len(self.readers)

    def of(self, reader: int) -> list[Choice]:
        start, end = np.searchsorted(self.readers, [reader, reader + 1])
        return [
            Choice(
                int(self.positions[i]),
                float(self.scores[i]),
                None if np.isnan(self.relevance[i]) else float(self.relevance[i]),
                None if self.serves[i] < 0 else int(self.serves[i]),
            )
            for i in range(start, end)
        ]


def select_for(
    candidates: Candidates,
    profiles: Sequence[Profile],
    *,
    sent: Sequence[Iterable[int]] | None = None,
    embedder: Embedder | None = None,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
    phrases: PhraseTable | None = None,
) -> Selected:
    """Each reader's picks, best first: at most ``profile.limit``, eligible only.

    ``feedback_rows`` maps a paper id named in some profile's feedback to its
    reference row (see :meth:`Candidates.reference_rows`); candidates need none.
    ``phrases`` keeps interest phrases scored by earlier calls (readers share them).

    A reader who said what they want can get a paper when one signal alone makes
    it relevant enough (one of their phrases, a followed author or category, or
    closeness to a paper they asked more of reaches ``min_relevance``) and the
    whole relevance, all signals together, stays at or above it. Only those
    (reader, paper) cells are scored, so a batch costs what its matches cost,
    not readers x papers.
    """
    table = phrases if phrases is not None else PhraseTable(candidates, embedder)
    sent_lists = list(sent) if sent is not None else [() for _ in profiles]
    flags = np.fromiter((p.personal for p in profiles), dtype=bool, count=len(profiles))
    parts = []
    for subset, personal in ((np.flatnonzero(flags), True), (np.flatnonzero(~flags), False)):
        if not subset.size:
            continue
        chosen = [profiles[r] for r in subset.tolist()]
        chosen_sent = [sent_lists[r] for r in subset.tolist()]
        rows, cols, final, relevance, serves = (
            _select_personal(candidates, chosen, chosen_sent, table, feedback_rows)
            if personal
            else _select_trending(candidates, chosen, chosen_sent, feedback_rows)
        )
        parts.append((subset[rows], cols, final, relevance, serves))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Selected(empty, empty, np.zeros(0), np.zeros(0), empty)
    readers = np.concatenate([p[0] for p in parts])
    # Stable: each reader's picks stay in score order.
    order = np.argsort(readers, kind="stable")
    return Selected(
        readers[order],
        np.concatenate([p[1] for p in parts])[order],
        np.concatenate([p[2] for p in parts])[order],
        np.concatenate([p[3] for p in parts])[order],
        np.concatenate([p[4] for p in parts])[order],
    )


def select_in_chunks(
    candidates: Candidates,
    profiles: Sequence[Profile],
    *,
    sent: Sequence[Iterable[int]] | None = None,
    embedder: Embedder | None = None,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
    phrases: PhraseTable | None = None,
    chunk: int = 2000,
    workers: int = 2,
) -> Iterator[tuple[int, Selected]]:
    """:func:`select_for` over a large batch: ``(offset, picks)`` per chunk of readers.

    Memory is bounded by the chunk; chunks run on ``workers`` threads (numpy and
    scipy release the GIL in the heavy parts). Everything the chunks share is
    computed first, so that the threads only read it.
    """
    table = phrases if phrases is not None else PhraseTable(candidates, embedder)
    table.ensure([p for profile in profiles for p in profile.phrases])
    candidates.containing([k for profile in profiles for k in profile.excluded])
    candidates.closeness_rows(
        [i for p in profiles for i in (*p.more_like, *p.fewer_like)], feedback_rows
    )
    sent_lists = list(sent) if sent is not None else [() for _ in profiles]

    def run(offset: int) -> tuple[int, Selected]:
        end = offset + chunk
        return offset, select_for(
            candidates,
            profiles[offset:end],
            sent=sent_lists[offset:end],
            feedback_rows=feedback_rows,
            phrases=table,
        )

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        yield from pool.map(run, range(0, len(profiles), chunk))


Cells = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _select_personal(
    candidates: Candidates,
    profiles: Sequence[Profile],
    sent: Sequence[Iterable[int]],
    table: PhraseTable,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None,
) -> Cells:
    config = candidates.config
    n = len(candidates)
    n_readers = len(profiles)
    lists = [p.phrases for p in profiles]
    table.ensure([p for phrases in lists for p in phrases])
    width = max((len(phrases) for phrases in lists), default=0)
    # slots[r, k]: the table row of reader r's k-th phrase, -1 past their last.
    slots = np.full((n_readers, max(width, 1)), -1, dtype=np.int64)
    for r, phrases in enumerate(lists):
        slots[r, : len(phrases)] = [table.index[p] for p in phrases]

    # Where each reader may find something relevant enough: the union of sparse
    # patterns (a sparse sum merges sorted rows in linear time), each with its
    # own flag so that one sum says which signals a cell has.
    authors = _flagged(
        _membership_hits(candidates.by_author, [p.authors for p in profiles], True), _AUTHOR
    )
    categories = _flagged(
        _membership_hits(candidates.by_category, [p.categories for p in profiles], False),
        _CATEGORY,
    )
    blocked = _blocked(candidates, profiles, sent)
    pattern = authors + categories
    if width:
        per_reader = np.bincount(blocked // n, minlength=n_readers) if n else np.zeros(n_readers)
        pattern = pattern + _flagged(table.hit_pattern(slots, per_reader), _PHRASE)
    more_owners, more = _closeness(candidates, profiles, "more_like", feedback_rows)
    fewer_owners, fewer = _closeness(candidates, profiles, "fewer_like", feedback_rows)
    bar = relevance_bar(config)
    if len(more_owners):
        close_rows, close_cols = np.nonzero(config.relevance.more_like_weight * more >= bar)
        pattern = pattern + sp.csr_matrix(
            (
                np.full(len(close_rows), _MORE_LIKE, dtype=np.float32),
                (more_owners[close_rows], close_cols),
            ),
            shape=pattern.shape,
        )
    pattern = pattern + sp.csr_matrix(
        (np.full(len(blocked), _BLOCKED, dtype=np.float32), (blocked // n, blocked % n)),
        shape=pattern.shape,
    )
    pattern = sp.csr_matrix(pattern)
    pattern.sort_indices()
    rows = np.repeat(np.arange(n_readers, dtype=np.int64), np.diff(pattern.indptr))
    cols = pattern.indices.astype(np.int64)
    flags = pattern.data.astype(np.int64)
    # Blocked cells go, and so do cells that are only blocked.
    usable = (flags < _BLOCKED) & (flags > 0)
    rows, cols, flags = rows[usable], cols[usable], flags[usable]

    # Relevance at those cells: the best phrase ...
    relevance = np.zeros(len(rows), dtype=np.float32)
    count = (slots >= 0).sum(axis=1)
    # Each phrase's own match, for serving every interest (-1: not the reader's).
    per_phrase = np.full((len(rows), slots.shape[1]), -1.0, dtype=np.float32)
    for k in range(slots.shape[1]):
        phrase = slots[rows, k]
        has = np.flatnonzero(phrase >= 0)
        per_phrase[has, k] = table.matched[phrase[has], cols[has]]
        relevance[has] = np.maximum(relevance[has], per_phrase[has, k])
    # ... blended with all the phrases together, for readers with several.
    several = np.flatnonzero(count[rows] > 1)
    if several.size:
        share = config.relevance.whole_text_weight
        at_cols, at_rows = cols[several], rows[several]
        weighted = np.zeros(len(several), dtype=np.float32)
        cosine = np.zeros(len(several), dtype=np.float32)
        for k in range(slots.shape[1]):
            phrase = slots[at_rows, k]
            has = np.flatnonzero(phrase >= 0)
            weighted[has] += table.weighted_lexical[phrase[has], at_cols[has]]
            if table.embedder is not None:
                cosine[has] += table.cosine[phrase[has], at_cols[has]]
        whole = weighted / table.ideal_totals(slots)[at_rows]
        if table.embedder is not None:
            norms = table.mean_norms(slots)[at_rows]
            whole = 1.0 - (1.0 - whole) * (1.0 - table.semantic(cosine / norms))
        relevance[several] = (1.0 - share) * relevance[several] + share * whole
    # What other signals add to any phrase's match: followed authors and
    # categories, and "more / fewer like this".
    extra = config.relevance.author_boost * ((flags & _AUTHOR) > 0).astype(np.float32)
    extra += config.relevance.category_boost * ((flags & _CATEGORY) > 0)
    extra += _feedback_at(config, n_readers, rows, cols, (more_owners, more), (fewer_owners, fewer))
    relevance = np.clip(relevance + extra, 0.0, None)

    weights = config.selection
    trending = candidates.trending[cols]
    final = weights.relevance_weight * relevance + weights.trending_weight * trending
    interests: np.ndarray | None = None
    strong: np.ndarray | None = None
    if weights.serve_every_interest:
        # An interest's score for a paper: that phrase's match (instead of the
        # blend of all) with the other signals, blended with trending; only where
        # the phrase alone makes the paper relevant enough. Followed authors and
        # followed categories are an interest each, scored as the whole.
        own = np.clip(per_phrase + extra[:, None], 0.0, None)
        serving = (per_phrase >= bar) & (own >= bar)
        interests = np.where(
            serving,
            weights.relevance_weight * own + weights.trending_weight * trending[:, None],
            -np.inf,
        )
        groups = [
            np.where(((flags & flag) > 0) & (relevance >= bar), final, -np.inf)
            for flag in (_AUTHOR, _CATEGORY)
        ]
        interests = np.column_stack([interests, *groups]).astype(np.float64)
        shared = weights.interest_shared_at
        strong = np.column_stack([per_phrase >= shared, np.zeros((len(rows), 2), dtype=bool)])
        keep = (relevance >= bar) | np.isfinite(interests).any(axis=1)
    else:
        keep = relevance >= bar
    rows, cols, relevance, final = rows[keep], cols[keep], relevance[keep], final[keep]
    if interests is not None and strong is not None:
        interests, strong = interests[keep], strong[keep]
    return _best_per_reader(
        candidates,
        profiles,
        rows,
        cols,
        final,
        relevance,
        interests,
        phrase_columns=width,
        strong=strong,
    )


# Which signals put a (reader, paper) cell in play; blocked outweighs them all.
_PHRASE, _AUTHOR, _CATEGORY, _MORE_LIKE, _BLOCKED = 1, 2, 4, 8, 16


def _flagged(matrix: sp.csr_matrix, flag: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    matrix.data[:] = flag
    return matrix


def _select_trending(
    candidates: Candidates,
    profiles: Sequence[Profile],
    sent: Sequence[Iterable[int]],
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None = None,
) -> Cells:
    """Readers without interests: the overall trending list, minus what they excluded
    or were sent. "More / fewer like this" reorders it (blended as relevance is),
    but never shortens it: such a reader still gets a full digest."""
    n = len(candidates)
    config = candidates.config
    blocked = _blocked(candidates, profiles, sent)
    more_owners, more = _closeness(candidates, profiles, "more_like", feedback_rows)
    fewer_owners, fewer = _closeness(candidates, profiles, "fewer_like", feedback_rows)
    with_feedback = np.union1d(more_owners, fewer_owners).astype(np.int64)
    # Without feedback only the head of the list can matter to anyone.
    order = np.argsort(-candidates.trending, kind="stable")
    longest = max((p.limit for p in profiles), default=0)
    per_reader = np.bincount(blocked // n, minlength=len(profiles)) if blocked.size else None
    duplicates = sum(len(g) for g in candidates.duplicate_groups)
    head = min(n, longest + (int(per_reader.max()) if per_reader is not None else 0) + duplicates)
    plain = np.setdiff1d(np.arange(len(profiles)), with_feedback)
    rows = np.concatenate([np.repeat(plain, head), np.repeat(with_feedback, n)])
    cols = np.concatenate(
        [np.tile(order[:head], len(plain)), np.tile(np.arange(n), len(with_feedback))]
    )
    order_rows = np.argsort(rows, kind="stable")
    rows, cols = rows[order_rows], cols[order_rows]
    keep = ~np.isin(rows * n + cols, blocked)
    rows, cols = rows[keep], cols[keep]
    final = candidates.trending[cols].astype(np.float64)
    relevance = np.full(len(rows), np.nan)
    if with_feedback.size:
        liked = _feedback_at(
            config, len(profiles), rows, cols, (more_owners, more), (fewer_owners, fewer)
        )
        touched = np.isin(rows, with_feedback)
        final[touched] = (
            config.selection.relevance_weight * liked[touched]
            + config.selection.trending_weight * final[touched]
        )
        relevance[touched & (liked > 0)] = liked[touched & (liked > 0)]
    return _best_per_reader(candidates, profiles, rows, cols, final, relevance, None)


def _best_per_reader(
    candidates: Candidates,
    profiles: Sequence[Profile],
    rows: np.ndarray,
    cols: np.ndarray,
    final: np.ndarray,
    relevance: np.ndarray,
    interests: np.ndarray | None,
    *,
    phrase_columns: int = 0,
    strong: np.ndarray | None = None,
) -> Cells:
    """Top ``limit`` cells per reader, one per near-duplicate group: with
    ``interests`` (cells x interests, each interest's score where it is served,
    -inf elsewhere) the best paper of each interest first, then by final score.

    Cells that serve an interest but are not relevant enough on the whole
    (``relevance`` below the bar) can only be picked for that interest.
    """
    # Rows ascending, then score descending (a score is below 8: relevance plus
    # boosts, blended with trending); cells arrive in (row, column) order, so a
    # stable sort breaks ties by column.
    order = np.argsort(rows * 16.0 + (8.0 - np.clip(final, -7.999, 7.999)), kind="stable")
    rows, cols, final, relevance = rows[order], cols[order], final[order], relevance[order]
    if interests is not None:
        interests = interests[order]
        strong = strong[order] if strong is not None else None
    group = candidates.duplicate_group_of[cols]
    grouped = np.flatnonzero(group >= 0)
    if grouped.size:
        # Cells are in score order within a reader: the first of a group is its best.
        pairs = rows[grouped] * (len(candidates.duplicate_groups) + 1) + group[grouped]
        _, first = np.unique(pairs, return_index=True)
        keep = np.ones(len(rows), dtype=bool)
        keep[grouped] = False
        keep[grouped[first]] = True
        rows, cols, final, relevance = rows[keep], cols[keep], final[keep], relevance[keep]
        if interests is not None:
            interests = interests[keep]
            strong = strong[keep] if strong is not None else None
    limits = np.fromiter((p.limit for p in profiles), dtype=np.int64, count=len(profiles))
    serves = np.full(len(rows), -1, dtype=np.int64)
    if interests is not None:
        picked, serves = _interest_picks(rows, interests, limits, strong)
        bar = relevance_bar(candidates.config)
        usable = np.isfinite(picked) | (relevance >= bar)
        # Interest picks first, then the rest; each part by final score (so that,
        # as before, a followed author's paper opens the digest).
        key = np.where(np.isfinite(picked), 0.0, 16.0) + 8.0 - np.clip(final, -7.999, 7.999)
        rows, cols, final, relevance, serves, key = (
            rows[usable],
            cols[usable],
            final[usable],
            relevance[usable],
            serves[usable],
            key[usable],
        )
        order = np.argsort(rows * 32.0 + key, kind="stable")
        rows, cols, final, relevance, serves = (
            rows[order],
            cols[order],
            final[order],
            relevance[order],
            serves[order],
        )
        # Only phrases are named in a reason; authors and categories say so themselves.
        serves[serves >= phrase_columns] = -1
    starts = np.searchsorted(rows, np.arange(len(profiles)))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < limits[rows]
    return rows[keep], cols[keep], final[keep], relevance[keep], serves[keep]


def _interest_picks(
    rows: np.ndarray, interests: np.ndarray, limits: np.ndarray, strong: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each reader's best paper for each of their interests, a paper for one interest.

    ``rows`` ascending; ``interests`` is cells x interests, an interest's score
    where the cell serves it, -inf elsewhere. Greedy in rounds: every interest
    not yet served proposes its best paper not yet taken; for each paper the
    interest that scores it highest gets it, and the others propose their next
    best in the next round. At most ``limit`` papers per reader, the best
    proposals first (when a reader has more interests than room, the interests
    whose best paper scores highest). Returns per cell the score it was picked
    with (NaN if it was not) and the interest it serves (-1).
    """
    n_cells, width = interests.shape
    picked = np.full(n_cells, np.nan)
    serves = np.full(n_cells, -1, dtype=np.int64)
    cell, interest = np.nonzero(np.isfinite(interests))
    if not cell.size:
        return picked, serves
    score = interests[cell, interest]
    owner = rows[cell]
    # Reader ascending, score descending, then cell: proposals in priority order.
    order = np.lexsort((cell, -score, owner))
    cell, interest, score, owner = cell[order], interest[order], score[order], owner[order]
    key = owner * width + interest
    # An interest can only need its best ``limit`` papers (the others may take
    # at most limit - 1): the rest never matter.
    by_key = np.argsort(key, kind="stable")
    sorted_keys = key[by_key]
    rank = np.arange(len(by_key)) - np.searchsorted(sorted_keys, sorted_keys)
    shortlist = np.zeros(len(key), dtype=bool)
    shortlist[by_key[rank < limits[owner[by_key]]]] = True
    cell, interest, score, owner, key = (
        cell[shortlist],
        interest[shortlist],
        score[shortlist],
        owner[shortlist],
        key[shortlist],
    )
    taken = np.zeros(n_cells, dtype=bool)
    served = np.zeros(len(limits) * width, dtype=bool)
    counts = np.zeros(len(limits), dtype=np.int64)
    for _ in range(width):
        active = np.flatnonzero(~taken[cell] & ~served[key] & (counts[owner] < limits[owner]))
        if not active.size:
            break
        # Each open interest's best remaining paper (entries are in score order).
        _, first = np.unique(key[active], return_index=True)
        proposals = active[np.sort(first)]
        # For each paper, the interest that scores it highest.
        _, win = np.unique(cell[proposals], return_index=True)
        winners = np.sort(proposals[win])
        # Best first within a reader, up to what the reader has room for.
        starts = np.searchsorted(owner[winners], owner[winners])
        room = limits[owner[winners]] - counts[owner[winners]]
        winners = winners[np.arange(len(winners)) - starts < room]
        taken[cell[winners]] = True
        served[key[winners]] = True
        picked[cell[winners]] = score[winners]
        serves[cell[winners]] = interest[winners]
        np.add.at(counts, owner[winners], 1)
        if strong is not None:
            # A paper that matches another of the reader's interests this well serves it too.
            at, also = np.nonzero(strong[cell[winners]])
            served[owner[winners][at] * width + also] = True
    return picked, serves


def _feedback_at(
    config: RankingConfig,
    n_readers: int,
    rows: np.ndarray,
    cols: np.ndarray,
    more: tuple[np.ndarray, np.ndarray],
    fewer: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """At each (reader, paper) cell: + closeness to what the reader asked more of,
    - closeness to what they asked fewer of, weighted (see :func:`_closeness`)."""
    result = np.zeros(len(rows), dtype=np.float32)
    for (owners, closeness), weight in (
        (more, config.relevance.more_like_weight),
        (fewer, -config.relevance.fewer_like_weight),
    ):
        if len(owners):
            local = np.full(n_readers, -1, dtype=np.int64)
            local[owners] = np.arange(len(owners))
            has = np.flatnonzero(local[rows] >= 0)
            result[has] += weight * closeness[local[rows[has]], cols[has]]
    return result


def _membership_hits(
    membership: tuple[dict[str, int], sp.csr_matrix],
    wanted: Sequence[Sequence[str]],
    casefold: bool,
) -> sp.csr_matrix:
    vocabulary, matrix = membership
    rows, cols = [], []
    for r, names in enumerate(wanted):
        for name in names:
            column = vocabulary.get(name.casefold() if casefold else name)
            if column is not None:
                rows.append(r)
                cols.append(column)
    query = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(wanted), matrix.shape[1]),
    )
    return (query @ matrix.T).tocsr()


def _closeness(
    candidates: Candidates,
    profiles: Sequence[Profile],
    kind: str,
    feedback_rows: dict[int, np.ndarray | sp.csr_matrix] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Readers with feedback of this kind, and each one's closeness (0..1) of every
    candidate to the nearest paper they gave it for."""
    owners: list[int] = []
    ids: list[int] = []
    for r, profile in enumerate(profiles):
        for paper_id in getattr(profile, kind):
            owners.append(r)
            ids.append(paper_id)
    rows = candidates.closeness_rows(ids, feedback_rows)
    known = [k for k, paper_id in enumerate(ids) if paper_id in rows]
    if not known:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(candidates)), dtype=np.float32)
    similar = np.vstack([rows[ids[k]] for k in known])
    owner_array = np.asarray([owners[k] for k in known])
    starts = np.flatnonzero(np.r_[True, owner_array[1:] != owner_array[:-1]])
    return owner_array[starts], np.maximum.reduceat(similar, starts, axis=0)


def _blocked(
    candidates: Candidates, profiles: Sequence[Profile], sent: Sequence[Iterable[int]]
) -> np.ndarray:
    """Cells no reader may get: papers already sent, asked fewer of or more of, with
    their near-duplicates (the same work listed again), and papers excluded by
    keyword, as reader * n + paper keys (repeats possible). A paper asked more of
    came in a digest or from the reader's own library: either way it is no news to them."""
    n = len(candidates)
    ids = [
        (*ids, *profile.fewer_like, *profile.more_like)
        for profile, ids in zip(profiles, sent, strict=True)
    ]
    counts = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(counts.sum()))
    owners = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
    # Paper ids to candidate positions; ids that are not candidates block nothing.
    found = np.searchsorted(candidates.sorted_ids, flat)
    found = np.minimum(found, max(n - 1, 0))
    hit = candidates.sorted_ids[found] == flat if n else np.zeros(len(flat), dtype=bool)
    owners, positions = owners[hit], candidates.sorted_positions[found[hit]]
    blocked = [owners * n + positions]
    groups = candidates.duplicate_group_of[positions]
    grouped = groups >= 0
    if grouped.any():
        members = [candidates.duplicate_groups[g] for g in groups[grouped].tolist()]
        sizes = np.fromiter((len(m) for m in members), dtype=np.int64, count=len(members))
        blocked.append(np.repeat(owners[grouped], sizes) * n + np.concatenate(members))
    excluded = [(r, k) for r, p in enumerate(profiles) for k in p.excluded]
    if excluded:
        containing = candidates.containing([k for _, k in excluded])
        sizes = np.fromiter((len(c) for c in containing), dtype=np.int64, count=len(containing))
        excluding = np.asarray([r for r, _ in excluded], dtype=np.int64)
        blocked.append(np.repeat(excluding, sizes) * n + np.concatenate(containing))
    return np.concatenate(blocked)
