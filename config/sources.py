"""Which sources an installation runs: ``config/sources.toml``, or the file
DIGEST_SOURCES_FILE names, with DIGEST_SOURCES choosing the enabled ones.

Each ``[sources.<name>]`` table has the keys every source takes (``kind``,
``enabled``, ``every_minutes``); every other key is an option of that kind of
source, checked when the source is built (``digest.papers.sources.registry``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.files import problems, read_toml

SourceKind = Literal["huggingface", "arxiv_rss", "arxiv_api", "feed", "sample"]
_COMMON_KEYS = frozenset({"name", "kind", "enabled", "every_minutes"})


class SourceConfigError(ValueError):
    """The sources file says something that cannot be run."""


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str
    enabled: bool = True
    # How often beat ingests it; DIGEST_INGEST_INTERVAL_MINUTES when absent.
    every_minutes: float | None = Field(default=None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        kinds = get_args(SourceKind)
        if kind not in kinds:
            raise ValueError(f"{kind!r} is not one of {', '.join(sorted(kinds))}")
        return kind

    @model_validator(mode="before")
    @classmethod
    def _options(cls, table: Any) -> Any:
        # In the file a source's options sit beside the common keys.
        if not isinstance(table, dict) or "options" in table:
            return table
        common = {k: v for k, v in table.items() if k in _COMMON_KEYS}
        return {**common, "options": {k: v for k, v in table.items() if k not in _COMMON_KEYS}}


def load_source_configs(path: Path | None = None, only: str = "") -> list[SourceConfig]:
    """Every source in the file; ``only`` (DIGEST_SOURCES: "name,name") enables exactly those."""
    data = read_toml(path, "sources.toml", kind="sources", error=SourceConfigError)
    configs = []
    for name, table in (data.get("sources") or {}).items():
        if not isinstance(table, dict):
            raise SourceConfigError(f"[sources.{name}] must be a table")
        try:
            configs.append(SourceConfig.model_validate({**table, "name": name}))
        except ValidationError as exc:
            # "[sources.x] kind 'pigeon' is not one of ...", as the table reads.
            raise SourceConfigError(f"[sources.{name}] {problems(exc, ' ')}") from exc
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    if wanted:
        unknown = sorted(set(wanted) - {c.name for c in configs})
        if unknown:
            raise SourceConfigError(f"DIGEST_SOURCES names unknown sources: {', '.join(unknown)}")
        configs = [c.model_copy(update={"enabled": c.name in wanted}) for c in configs]
    return configs


def enabled_source_configs(path: Path | None = None, only: str = "") -> list[SourceConfig]:
    return [c for c in load_source_configs(path, only) if c.enabled]
