"""The ranker: papers for each reader, relevance to what they asked for blended
with what is trending, never a paper they were already sent, no near-duplicates.

:class:`TrendingRanker` puts this package together: it reads the candidates of
the window (cached while they are unchanged), the readers' profiles and what they
were sent, has :mod:`~digest.ranking.selection` pick for all of them at once and
:mod:`~digest.ranking.reasons` explain the picks. The per-reader
:meth:`TrendingRanker.pick` used by the delivery path is the same code with a
batch of one. Parameters: ``config/ranking.toml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.ranking import RankingConfig
from digest.papers.models import Paper, PopularitySignal
from digest.ranking.candidates import Candidates, appeared
from digest.ranking.phrases import PhraseTable
from digest.ranking.picks import Empty, Pick, Selection
from digest.ranking.profiles import (
    Profile,
    profile_of,
    profiles_of,
    sent_paper_ids,
    sent_paper_ids_of,
)
from digest.ranking.reasons import explain
from digest.ranking.selection import select_for
from digest.ranking.semantic import Embedder, paper_vectors
from digest.ranking.trending import trends_for
from digest.subscriptions.models import Subscriber

# Distinct interest phrases kept scored per process (each costs a row of floats
# per candidate, 8 kB for 2,000 candidates).
MAX_CACHED_PHRASES = 20_000
NO_NEW_PAPERS = "no new papers for this reader"
# The most papers a digest holds: the trending section's list is this much longer
# than it shows, so that leaving out any reader's own picks still fills it.
MAX_PICKS = 50


class TrendingRanker:
    """The production ranker: candidates of the window, cached while they are unchanged."""

    def __init__(
        self, *, window: timedelta, config: RankingConfig, embedder: Embedder | None = None
    ) -> None:
        self.window = window
        self.config = config
        self.embedder = embedder
        self._cache: tuple[tuple[object, ...], Candidates] | None = None
        self._phrases: PhraseTable | None = None
        self._prepared: dict[int, tuple[datetime, Selection]] = {}

    def candidates(
        self, session: Session, *, now: datetime, since: datetime | None = None
    ) -> Candidates:
        start = since or now - self.window
        # Candidates change when papers or signals arrive, and the decay moves hourly.
        key = (
            start.replace(minute=0, second=0, microsecond=0),
            now.replace(minute=0, second=0, microsecond=0),
            *session.execute(
                select(func.count(Paper.id), func.max(Paper.id), func.max(Paper.updated_at)).where(
                    Paper.first_seen_at >= start, Paper.first_seen_at <= now
                )
            ).one(),
            session.scalar(select(func.max(PopularitySignal.id))),
        )
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        papers = list(
            session.scalars(
                select(Paper)
                .where(Paper.first_seen_at >= start, Paper.first_seen_at <= now)
                .order_by(Paper.id)
            )
        )
        trends_by_id = trends_for(
            session, {p.id: appeared(p) for p in papers}, now=now, config=self.config.trending
        )
        vectors = (
            paper_vectors(session, [(p.id, p.title, p.abstract) for p in papers], self.embedder)
            if self.embedder is not None
            else None
        )
        candidates = Candidates.build(
            papers,
            [trends_by_id[p.id] for p in papers],
            now=now,
            config=self.config,
            vectors=vectors,
        )
        for paper in papers:
            session.expunge(paper)
        self._cache = (key, candidates)
        self._phrases = None
        return candidates

    def phrase_table(self, candidates: Candidates) -> PhraseTable:
        """Phrases scored for these candidates, shared by the readers of a send run."""
        if (
            self._phrases is None
            or self._phrases.candidates is not candidates
            or len(self._phrases.index) > MAX_CACHED_PHRASES
        ):
            self._phrases = PhraseTable(candidates, self.embedder)
        return self._phrases

    def rank(
        self,
        session: Session,
        profile: Profile,
        *,
        now: datetime,
        sent: set[int] | None = None,
        since: datetime | None = None,
    ) -> Selection:
        [selection] = self.rank_many(session, [profile], now=now, sent=[sent or set()], since=since)
        return selection

    def rank_many(
        self,
        session: Session,
        profiles: Sequence[Profile],
        *,
        now: datetime,
        sent: Sequence[set[int]],
        since: datetime | None = None,
    ) -> list[Selection]:
        """Selections for many readers at once: one pass over the candidates."""
        candidates = self.candidates(session, now=now, since=since)
        if not len(candidates):
            return [Selection([], NO_NEW_PAPERS, Empty.NO_NEW_PAPERS) for _ in profiles]
        feedback_ids = {
            i
            for profile in profiles
            for i in (*profile.more_like, *profile.fewer_like)
            if i not in candidates.position
        }
        rows: dict[int, np.ndarray | sp.csr_matrix] = {}
        if feedback_ids:
            others = list(session.scalars(select(Paper).where(Paper.id.in_(feedback_ids))))
            vectors = (
                paper_vectors(session, [(p.id, p.title, p.abstract) for p in others], self.embedder)
                if candidates.vectors is not None and self.embedder is not None
                else None
            )
            reference = candidates.reference_rows(others, vectors)
            rows = {p.id: reference[k] for k, p in enumerate(others)}
        selected = select_for(
            candidates,
            profiles,
            sent=sent,
            embedder=self.embedder,
            feedback_rows=rows,
            phrases=self.phrase_table(candidates),
        )
        selections = []
        for r, profile in enumerate(profiles):
            choices = selected.of(r)
            if choices:
                selections.append(
                    Selection(
                        [
                            explain(
                                candidates,
                                profile,
                                c.position,
                                c.score,
                                c.relevance,
                                self.embedder,
                                serves=c.serves,
                            )
                            for c in choices
                        ]
                    )
                )
            elif not profile.personal:
                selections.append(Selection([], NO_NEW_PAPERS, Empty.NO_NEW_PAPERS))
            elif not self.config.selection.send_trending_when_nothing_relevant:
                selections.append(
                    Selection([], "nothing relevant enough today", Empty.NOTHING_RELEVANT)
                )
            else:
                general = Profile(
                    excluded=profile.excluded, fewer_like=profile.fewer_like, limit=profile.limit
                )
                fallback = select_for(candidates, [general], sent=[sent[r]]).of(0)
                selections.append(
                    Selection(
                        [explain(candidates, general, c.position, c.score, None) for c in fallback],
                        "nothing relevant enough: sent the overall trending list",
                    )
                )
        return selections

    def trending(self, session: Session, *, now: datetime) -> list[Pick]:
        """The overall trending list (one per near-duplicate group), for the section
        every digest of an edition ends with; ``trending_section_size`` + 50 long."""
        size = self.config.selection.trending_section_size
        if not size:
            return []
        candidates = self.candidates(session, now=now)
        if not len(candidates):
            return []
        everyone = Profile(limit=size + MAX_PICKS)
        chosen = select_for(candidates, [everyone], phrases=self.phrase_table(candidates)).of(0)
        return [explain(candidates, everyone, c.position, c.score, None) for c in chosen]

    def prepare(
        self, session: Session, subscribers: Sequence[Subscriber], *, now: datetime
    ) -> None:
        """Rank a batch of readers in one pass; their :meth:`pick` then returns the result.

        For a batch about to be sent: ``pick`` falls back to ranking alone any
        reader not prepared, or prepared for another moment.
        """
        selections = self.pick_many(session, subscribers, now=now)
        self._prepared = {
            s.id: (now, selection) for s, selection in zip(subscribers, selections, strict=True)
        }

    def pick_many(
        self, session: Session, subscribers: Sequence[Subscriber], *, now: datetime
    ) -> list[Selection]:
        """Each reader's selection, ranked together in one pass; ``subscribers`` order."""
        ids = [s.id for s in subscribers]
        profiles = profiles_of(session, subscribers)
        sent = sent_paper_ids_of(session, ids)
        return self.rank_many(session, profiles, now=now, sent=[sent.get(i, set()) for i in ids])

    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection:
        prepared = self._prepared.pop(subscriber.id, None)
        if prepared is not None and prepared[0] == now:
            return prepared[1]
        return self.rank(
            session,
            profile_of(session, subscriber),
            now=now,
            sent=sent_paper_ids(session, subscriber.id),
        )
