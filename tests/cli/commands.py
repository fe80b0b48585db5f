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
