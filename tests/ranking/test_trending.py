"""Popularity from change points (``digest.trending``) and the ranking file that
parametrises it (``config.ranking``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from config.ranking import RankingConfig, RankingConfigError, TrendingConfig, load_ranking_config
from config.settings import Settings
from digest.papers.models import PopularitySignal
from digest.ranking.trending import (
    Observation,
    Trend,
    trend_at,
    trending_scores,
    trends_for,
    velocity_label,
)
from digest.runtime import Runtime
from tests.factories import NOW, make_paper

DAY = timedelta(hours=24)
CONFIG = TrendingConfig()


def seen(hours_ago: float, upvotes: int | None, source: str = "hf", **counts: int) -> Observation:
    return Observation(
        source=source,
        observed_at=NOW - timedelta(hours=hours_ago),
        upvotes=upvotes,
        comments=counts.get("comments"),
        github_stars=counts.get("github_stars"),
    )


def trend(*observations: Observation, first_seen_hours_ago: float = 24 * 10) -> Trend:
    return trend_at(
        observations,
        now=NOW,
        window=DAY,
        first_seen_at=NOW - timedelta(hours=first_seen_hours_ago),
    )


# -- trend_at ----------------------------------------------------------------------


def test_the_value_now_is_the_last_change_point() -> None:
    found = trend(seen(72, 10), seen(30, 20), seen(1, 35))
    assert found.upvotes == 35


def test_the_gain_is_measured_from_the_last_change_point_before_the_window() -> None:
    # 20 when the window opened (the change point 30 h ago still held), 50 now.
    assert trend(seen(72, 10), seen(30, 20), seen(2, 50)).gained == 30
    # A change point exactly at the window's start is the baseline.
    assert trend(seen(72, 10), seen(24, 25), seen(2, 50)).gained == 25


def test_a_paper_that_did_not_move_in_the_window_gained_nothing() -> None:
    found = trend(seen(72, 10), seen(48, 400))
    assert (found.upvotes, found.gained) == (400, 0)


def test_the_order_of_the_observations_does_not_matter() -> None:
    assert trend(seen(2, 50), seen(72, 10), seen(30, 20)).gained == 30


def test_a_paper_first_seen_inside_the_window_gained_all_its_upvotes() -> None:
    found = trend(seen(5, 40), seen(1, 60), first_seen_hours_ago=5)
    assert (found.upvotes, found.gained) == (60, 60)


def test_a_paper_known_before_the_window_but_first_counted_inside_it_claims_no_gain() -> None:
    # 90 upvotes from a source that only now lists it: they may be a week old.
    found = trend(seen(2, 90), first_seen_hours_ago=24 * 3)
    assert (found.upvotes, found.gained) == (90, 0)


def test_several_sources_the_highest_wins() -> None:
    found = trend(
        seen(48, 5, source="hf", comments=2),
        seen(1, 30, source="hf", comments=4),
        seen(48, 100, source="other", github_stars=7),
        seen(1, 110, source="other", github_stars=9),
    )
    # Upvotes and comments are read per source, never added across sources.
    assert found.upvotes == 110
    assert found.gained == 25  # hf: +25, other: +10
    assert (found.comments, found.github_stars) == (4, 9)


def test_observations_after_now_are_ignored() -> None:
    future = Observation("hf", NOW + timedelta(hours=3), 999, 50, 50)
    found = trend(seen(48, 10), seen(2, 20), future)
    assert (found.upvotes, found.gained, found.comments, found.github_stars) == (20, 10, None, None)
    # Seen only in the future: nothing is known yet.
    assert not trend(future).has_signal


def test_no_observation_is_no_signal() -> None:
    found = trend()
    assert found == Trend() and not found.has_signal
    assert (found.upvotes, found.gained) == (None, None)


def test_a_source_without_upvotes_is_a_signal_without_a_gain() -> None:
    found = trend(seen(2, None, source="github", github_stars=300))
    assert found.has_signal
    assert (found.upvotes, found.gained, found.github_stars) == (None, None, 300)


# -- trends_for (from the database) -----------------------------------------------


def signal(
    session: Session, paper_id: int, hours_ago: float, upvotes: int, source: str = "hf"
) -> None:
    session.add(
        PopularitySignal(
            paper_id=paper_id,
            source=source,
            observed_at=NOW - timedelta(hours=hours_ago),
            upvotes=upvotes,
        )
    )
    session.flush()


def test_trends_for_reads_each_papers_change_points(session: Session) -> None:
    old = make_paper(session, first_seen_at=NOW - 3 * DAY)
    new = make_paper(session, first_seen_at=NOW - timedelta(hours=6))
    quiet = make_paper(session, first_seen_at=NOW - timedelta(hours=6))
    signal(session, old.id, 48, 10)
    signal(session, old.id, 3, 70)
    signal(session, new.id, 6, 15)
    signal(session, new.id, 1, 25)
    # Recorded after the moment asked about: not yet known then.
    signal(session, new.id, -2, 500)

    trends = trends_for(
        session,
        {p.id: p.first_seen_at for p in (old, new, quiet)},
        now=NOW,
        config=CONFIG,
    )

    assert (trends[old.id].upvotes, trends[old.id].gained) == (70, 60)
    assert (trends[new.id].upvotes, trends[new.id].gained) == (25, 25)
    assert trends[quiet.id] == Trend()


def test_trends_for_uses_the_configured_velocity_window(session: Session) -> None:
    paper = make_paper(session, first_seen_at=NOW - 5 * DAY)
    signal(session, paper.id, 100, 10)
    signal(session, paper.id, 60, 40)
    signal(session, paper.id, 2, 50)
    first_seen = {paper.id: paper.first_seen_at}

    day = trends_for(session, first_seen, now=NOW, config=CONFIG)
    week = trends_for(session, first_seen, now=NOW, config=TrendingConfig(velocity_hours=7 * 24))

    assert day[paper.id].gained == 10
    assert week[paper.id].gained == 50  # first seen inside the week: all of it


def test_trends_for_an_earlier_moment_sees_the_history_of_then(session: Session) -> None:
    paper = make_paper(session, first_seen_at=NOW - 5 * DAY)
    signal(session, paper.id, 100, 10)
    signal(session, paper.id, 60, 40)
    signal(session, paper.id, 2, 50)

    then = trends_for(session, {paper.id: paper.first_seen_at}, now=NOW - 2 * DAY, config=CONFIG)

    assert (then[paper.id].upvotes, then[paper.id].gained) == (40, 30)


# -- trending_scores ---------------------------------------------------------------


def score(trend: Trend, age_hours: float = 0.0, config: TrendingConfig = CONFIG) -> float:
    return float(trending_scores([trend], [age_hours], config)[0])


def test_more_velocity_scores_higher_at_the_same_total() -> None:
    assert score(Trend(upvotes=100, gained=90)) > score(Trend(upvotes=100, gained=5))
    assert score(Trend(upvotes=100, gained=5)) > score(Trend(upvotes=100, gained=0))


def test_the_score_halves_every_half_life() -> None:
    fresh = score(Trend(upvotes=80, gained=20, comments=3))
    half_life = CONFIG.half_life_hours
    assert score(Trend(upvotes=80, gained=20, comments=3), half_life) == pytest.approx(fresh / 2)
    assert score(Trend(upvotes=80, gained=20, comments=3), 3 * half_life) == pytest.approx(
        fresh / 8
    )
    short = TrendingConfig(half_life_hours=6)
    assert score(Trend(upvotes=80), 6, short) == pytest.approx(score(Trend(upvotes=80)) / 2)


def test_a_paper_from_the_future_does_not_score_above_a_fresh_one() -> None:
    assert score(Trend(upvotes=10), -30) == pytest.approx(score(Trend(upvotes=10)))


def test_a_paper_without_any_signal_scores_like_the_configured_upvotes() -> None:
    assert score(Trend()) == pytest.approx(score(Trend(upvotes=3, gained=0)))
    assert score(Trend()) < score(Trend(upvotes=10, gained=0))
    generous = TrendingConfig(unvoted_as_upvotes=40)
    assert score(Trend(), 0, generous) == pytest.approx(score(Trend(upvotes=40), 0, generous))
    assert score(Trend(), 0, TrendingConfig(unvoted_as_upvotes=0)) == 0.0
    # And it fades like any other paper.
    assert score(Trend(), CONFIG.half_life_hours) == pytest.approx(score(Trend()) / 2)


def test_popularity_counts_on_a_log_scale() -> None:
    only_upvotes = TrendingConfig(velocity_weight=0, comments_weight=0, stars_weight=0)
    fifty, five_hundred = (score(Trend(upvotes=n), 0, only_upvotes) for n in (50, 500))
    # Ten times the upvotes is not ten times the score: one more step of ln(10).
    assert fifty == pytest.approx(math.log1p(50))
    assert five_hundred - fifty == pytest.approx(math.log1p(500) - math.log1p(50))
    assert five_hundred < 2 * fifty


def test_every_signal_counts_with_its_weight() -> None:
    weights = TrendingConfig(upvotes_weight=1, velocity_weight=2, comments_weight=3, stars_weight=4)
    expected = math.log1p(10) + 2 * math.log1p(4) + 3 * math.log1p(6) + 4 * math.log1p(100)
    found = score(Trend(upvotes=10, gained=4, comments=6, github_stars=100), 0, weights)
    assert found == pytest.approx(expected)


def test_scores_come_back_in_the_order_given() -> None:
    trends = [Trend(upvotes=1), Trend(upvotes=1000), Trend()]
    scores = trending_scores(trends, [0, 0, 0], CONFIG)
    assert isinstance(scores, np.ndarray) and scores.shape == (3,)
    assert scores[1] > scores[2] > scores[0] >= 0
    assert trending_scores([], [], CONFIG).shape == (0,)


@pytest.mark.parametrize(
    ("hours", "label"), [(24, "today"), (48, "in 2 days"), (168, "in 7 days"), (6, "in 6 h")]
)
def test_the_velocity_window_is_named_in_reasons_as_a_reader_would_say_it(
    hours: float, label: str
) -> None:
    assert velocity_label(TrendingConfig(velocity_hours=hours)) == label


# -- the ranking file --------------------------------------------------------------


def ranking_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ranking.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_ranking_file_loads_and_states_the_defaults() -> None:
    packaged = load_ranking_config()
    # "A missing key keeps the default written here": the file and the code agree.
    assert packaged == RankingConfig()
    assert packaged.trending.half_life_hours == 48
    assert packaged.relevance.semantic == "auto"


def test_a_partial_file_keeps_the_defaults_for_the_rest(tmp_path: Path) -> None:
    loaded = load_ranking_config(
        ranking_file(tmp_path, '[trending]\nhalf_life_hours = 12\n[relevance]\nsemantic = "off"\n')
    )
    assert loaded.trending.half_life_hours == 12
    assert loaded.relevance.semantic == "off"
    assert loaded.trending.velocity_hours == RankingConfig().trending.velocity_hours
    assert loaded.selection == RankingConfig().selection


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[trending]\nvelocity_hour = 12\n", ["trending.velocity_hour", "unknown"]),
        ("[trendin]\nhalf_life_hours = 12\n", ["trendin", "unknown"]),
        ("[trending]\nhalf_life_hours = 0\n", ["trending.half_life_hours", "greater than 0"]),
        ("[relevance]\nb = 1.5\n", ["relevance.b", "less than or equal to 1"]),
        ('[relevance]\nsemantic = "maybe"\n', ["relevance.semantic", "'auto', 'on' or 'off'"]),
        ('[selection]\nmin_relevance = "high"\n', ["selection.min_relevance", "number"]),
        (
            "[relevance]\nsemantic_floor = 0.7\n",
            ["relevance: semantic_floor (0.7) must be below semantic_ceiling (0.65)"],
        ),
    ],
)
def test_a_bad_ranking_file_is_refused_with_a_readable_message(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = ranking_file(tmp_path, text)
    with pytest.raises(RankingConfigError) as raised:
        load_ranking_config(path)
    message = str(raised.value)
    assert message.startswith(f"ranking file {path}: ")
    for part in expected:
        assert part in message
    # One line a person can act on, without pydantic's internals.
    assert "\n" not in message
    assert "errors.pydantic.dev" not in message and "type=" not in message


def test_every_problem_of_a_ranking_file_is_named_at_once(tmp_path: Path) -> None:
    path = ranking_file(tmp_path, "[trending]\nvelocity_hour = 12\nhalf_life_hours = -1\n")
    with pytest.raises(RankingConfigError, match=r"half_life_hours.*; .*velocity_hour"):
        load_ranking_config(path)


def test_a_ranking_file_that_is_not_toml_or_missing_is_refused(tmp_path: Path) -> None:
    broken = ranking_file(tmp_path, "[trending\nhalf_life_hours = 12\n")
    with pytest.raises(RankingConfigError, match=f"ranking file {broken}: .*line 1"):
        load_ranking_config(broken)
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(RankingConfigError, match=f"cannot read {missing}"):
        load_ranking_config(missing)


def test_the_runtime_ranks_with_the_settings_ranking_file(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = ranking_file(
        tmp_path, '[trending]\nhalf_life_hours = 6\n[relevance]\nsemantic = "off"\n'
    )
    runtime = Runtime(make_settings(ranking_file=path))
    try:
        assert runtime.ranking_config.trending.half_life_hours == 6
        assert runtime.ranker.config is runtime.ranking_config
        assert runtime.embedder is None  # semantic = "off"
    finally:
        runtime.dispose()

    default = Runtime(make_settings())
    assert default.ranking_config == load_ranking_config()


def test_digest_ranking_file_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ranking_file(tmp_path, "[selection]\nmin_relevance = 0.5\n")
    monkeypatch.setenv("DIGEST_RANKING_FILE", str(path))
    settings = Settings(_env_file=None)
    assert settings.ranking_file == path
    assert Runtime(settings).ranking_config.selection.min_relevance == 0.5


def test_a_bad_ranking_file_stops_the_runtime_with_the_message(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = ranking_file(tmp_path, "[trending]\nhalf_life_hours = 0\n")
    with pytest.raises(RankingConfigError, match="half_life_hours"):
        _ = Runtime(make_settings(ranking_file=path)).ranker
