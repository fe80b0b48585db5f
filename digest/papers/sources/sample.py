"""The offline sample: real Daily Papers listings shipped inside the package.

``digest/papers/data/sample_papers.json`` is built from the seed listings by
``scripts/build_sample_papers.py``; it lets a new user run the whole pipeline
with no network at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from digest.papers.sources import PaperRecord, SourceError


class SampleSource:
    name = "sample"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            if self.path is not None:
                text = self.path.read_text(encoding="utf-8")
            else:
                text = (
                    resources.files("digest.papers")
                    .joinpath("data/sample_papers.json")
                    .read_text(encoding="utf-8")
                )
            data: dict[str, Any] = json.loads(text)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot read the sample papers: {exc}") from exc
        return data

    def fetch(self) -> Iterator[PaperRecord]:
        for item in self._load()["papers"]:
            published = item.get("published")
            yield PaperRecord(
                canonical_id=item["canonical_id"],
                title=item["title"],
                abstract=item.get("abstract") or "",
                author_count=item.get("author_count"),
                links=dict(item.get("links") or {}),
                published_on=date.fromisoformat(published) if published else None,
                upvotes=item.get("upvotes"),
            )
