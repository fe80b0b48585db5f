"""Reading the project's TOML files into pydantic models, with one-line errors.

``config/ranking.toml`` and ``config/sources.toml`` are read the same way: the
packaged file unless a path is given, and every problem reported as
``section.key: what is wrong`` instead of pydantic's multi-line report.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def read_toml(
    path: Path | None, packaged: str, *, kind: str, error: type[ValueError]
) -> dict[str, Any]:
    """The TOML at ``path``, or the packaged ``config/<packaged>`` when ``path`` is None."""
    where = path or f"config/{packaged}"
    try:
        if path is None:
            text = resources.files("config").joinpath(packaged).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {where}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{kind} file {where}: not valid TOML: {exc}") from exc


def problems(exc: ValidationError, separator: str = ": ") -> str:
    """Every validation error of ``exc`` on one line: ``key<separator>what is wrong``."""
    return "; ".join(_problem(error, separator) for error in exc.errors())


def _problem(error: ErrorDetails, separator: str) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "file"
    if error["type"] == "extra_forbidden":
        return f"{where}{separator}unknown key"
    message = error["msg"].removeprefix("Value error, ").replace("Input should", "should", 1)
    return f"{where}{separator}{message}"
