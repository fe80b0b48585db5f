"""The ranking's parameters: ``config/ranking.toml``, or the file DIGEST_RANKING_FILE names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.files import problems, read_toml


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrendingConfig(_Section):
    upvotes_weight: float = Field(default=1.0, ge=0)
    velocity_weight: float = Field(default=1.5, ge=0)
    comments_weight: float = Field(default=0.5, ge=0)
    stars_weight: float = Field(default=0.3, ge=0)
    velocity_hours: float = Field(default=24, gt=0)
    unvoted_as_upvotes: float = Field(default=3, ge=0)
    half_life_hours: float = Field(default=48, gt=0)


class RelevanceConfig(_Section):
    title_weight: float = Field(default=3.0, ge=0)
    abstract_weight: float = Field(default=1.0, ge=0)
    phrase_weight: float = Field(default=1.5, ge=0)
    k1: float = Field(default=1.2, gt=0)
    b: float = Field(default=0.75, ge=0, le=1)
    semantic: Literal["auto", "on", "off"] = "auto"
    semantic_floor: float = Field(default=0.15, ge=-1, le=1)
    semantic_ceiling: float = Field(default=0.65, ge=-1, le=1)
    whole_text_weight: float = Field(default=0.5, ge=0, le=1)
    author_boost: float = Field(default=1.0, ge=0)
    category_boost: float = Field(default=0.5, ge=0)
    more_like_weight: float = Field(default=0.8, ge=0)
    fewer_like_weight: float = Field(default=0.8, ge=0)

    @model_validator(mode="after")
    def _band(self) -> RelevanceConfig:
        # Similarities are mapped onto 0..1 by (cosine - floor) / (ceiling - floor).
        if self.semantic_floor >= self.semantic_ceiling:
            raise ValueError(
                f"semantic_floor ({self.semantic_floor:g}) must be below "
                f"semantic_ceiling ({self.semantic_ceiling:g})"
            )
        return self


class SelectionConfig(_Section):
    relevance_weight: float = Field(default=0.85, ge=0)
    trending_weight: float = Field(default=0.15, ge=0)
    min_relevance: float = Field(default=0.15, ge=0, le=1)
    send_trending_when_nothing_relevant: bool = False
    phrase_candidates: int = Field(default=50, ge=1)
    near_duplicate_similarity: float = Field(default=0.9, gt=0, le=1)
    serve_every_interest: bool = True
    interest_shared_at: float = Field(default=0.9, ge=0)
    trending_section_size: int = Field(default=3, ge=0, le=20)


class RankingConfig(_Section):
    trending: TrendingConfig = TrendingConfig()
    relevance: RelevanceConfig = RelevanceConfig()
    selection: SelectionConfig = SelectionConfig()


class RankingConfigError(ValueError):
    """The ranking file cannot be used."""


def load_ranking_config(path: Path | None = None) -> RankingConfig:
    data = read_toml(path, "ranking.toml", kind="ranking", error=RankingConfigError)
    try:
        return RankingConfig.model_validate(data)
    except ValidationError as exc:
        where = path or "config/ranking.toml"
        raise RankingConfigError(f"ranking file {where}: {problems(exc)}") from exc
