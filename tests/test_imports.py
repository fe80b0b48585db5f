"""Starting a process that does not rank costs no machine-learning imports."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn")

PROGRAM = f"""
import sys
import digest.cli.main, workers.tasks, digest.web.app
from config.settings import Settings
from digest.web.app import create_app
from workers.app import create_celery

settings = Settings.from_values(secret_key="imports-test", sources="sample")
create_app(settings)
create_celery(settings)
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_cli_web_app_and_worker_tasks_import_no_model_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""
