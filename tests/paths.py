"""Where the checkout's own files are, for the tests that read or run them."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
