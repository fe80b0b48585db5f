"""Reasons: the line under each pick in the email that says why it was chosen.

"matches: diffusion, image editing · 142 upvotes · trending +38 today". Written
only for the picks selection kept, a handful per reader, so that it can look at
one paper at a time where selection works on whole matrices.
"""

from __future__ import annotations

from digest.ranking.candidates import Candidates, relevance_bar
from digest.ranking.picks import Pick
from digest.ranking.profiles import Profile
from digest.ranking.semantic import Embedder


def explain(
    candidates: Candidates,
    profile: Profile,
    position: int,
    score: float,
    relevance: float | None,
    embedder: Embedder | None = None,
    serves: int | None = None,
) -> Pick:
    """The pick with its human reason: "matches: diffusion · 142 upvotes · trending +38 today".

    ``serves``: the index of the phrase the pick was chosen for; it is named first.
    """
    paper = candidates.papers[position]
    trend = candidates.trends[position]
    matched: list[str] = []
    phrases = profile.phrases
    if phrases:
        containing = candidates.containing(phrases)
        literal = [p for p, found in zip(phrases, containing, strict=True) if position in found]
        matched += literal
        if candidates.vectors is not None and len(matched) < len(phrases):
            matched += _close_phrases(candidates, phrases, matched, position, embedder)
        if serves is not None:
            # The interest this paper was picked for, first, in the words that fit.
            phrase = phrases[serves]
            named = phrase if phrase in literal else f"close to “{phrase}”"
            matched = [named, *(m for m in matched if m != named)]
    authors = {a.casefold() for a in profile.authors}
    matched += [f"by {name}" for name in paper.authors if name.casefold() in authors]
    matched += [f"in {c}" for c in paper.categories if c in set(profile.categories)]
    parts = []
    if matched:
        parts.append("matches: " + ", ".join(matched))
    elif profile.more_like and _close_to_liked(candidates, profile, position):
        parts.append("like papers you asked more of")
    if trend.upvotes:
        parts.append(f"{trend.upvotes} upvote" + ("" if trend.upvotes == 1 else "s"))
    if trend.gained:
        parts.append(f"trending +{trend.gained} {candidates.velocity_label}")
    if trend.github_stars:
        parts.append(f"{trend.github_stars} GitHub stars")
    if not trend.has_signal:
        parts.append("new, not yet voted on")
    return Pick(
        paper=paper,
        reason=" · ".join(parts),
        upvotes=trend.upvotes,
        score=score,
        relevance=relevance,
    )


def _close_to_liked(candidates: Candidates, profile: Profile, position: int) -> bool:
    """Whether closeness to a paper the reader asked more of alone makes this one relevant."""
    config = candidates.config
    bar = relevance_bar(config)
    rows = candidates.closeness_rows(list(profile.more_like), None)
    return any(config.relevance.more_like_weight * row[position] >= bar for row in rows.values())


def _close_phrases(
    candidates: Candidates,
    phrases: list[str],
    matched: list[str],
    position: int,
    embedder: Embedder | None,
) -> list[str]:
    if embedder is None or candidates.vectors is None:
        return []
    rest = [p for p in phrases if p not in matched]
    cosine = embedder.embed(rest) @ candidates.vectors[position]
    # Close in meaning: a third of the way into the floor..ceiling band, where
    # a phrase starts to make a paper eligible on its own.
    low = candidates.config.relevance.semantic_floor
    high = candidates.config.relevance.semantic_ceiling
    bar = low + (high - low) / 3
    return [f"close to “{p}”" for p, c in zip(rest, cosine, strict=True) if c >= bar]
