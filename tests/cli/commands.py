"""The installed ``digest`` command, run in a subprocess as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DIGEST = str(Path(sys.executable).with_name("digest"))
# A bound, not a wait: the first ranking of the sample loads the embedding model and
# embeds 188 papers, which took over 120 s with both cores busy.
TIMEOUT_SECONDS = 240


# Lexical ranking only, for tests not about semantic matching: loading the embedding
# model costs 5-8 s per process, and embedding the sample ~30 s the first time.
LEXICAL = '[relevance]\nsemantic = "off"\n'


def lexical_ranking_file(folder: Path) -> str:
    """A ranking.toml with semantic matching off, for ``DIGEST_RANKING_FILE``."""
    ranking = folder / "ranking.toml"
    ranking.write_text(LEXICAL, encoding="utf-8")
    return str(ranking)


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``digest *args`` in ``cwd``, in development mode unless ``env`` says otherwise."""
    return subprocess.run(
        [DIGEST, *args],
        env={**os.environ, "DIGEST_ENVIRONMENT": "development", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
