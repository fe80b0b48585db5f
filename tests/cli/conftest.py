"""What the command tests share: a data folder with a migrated SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.commands import lexical_ranking_file, run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """``DIGEST_`` settings of a fresh embedded default in ``tmp_path``, upgraded."""
    values = {
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SOURCES": "sample",
        # Ranking itself is tested in tests/ranking and by `digest demo`.
        "DIGEST_RANKING_FILE": lexical_ranking_file(tmp_path),
    }
    assert run("db", "upgrade", env=values, cwd=tmp_path).returncode == 0
    return values
