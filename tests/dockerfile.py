"""The Dockerfile read as build stages, for the tests that check what the image holds."""

from __future__ import annotations

from tests.paths import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def instructions(text: str) -> list[str]:
    """One string per instruction: comments and blank lines dropped, continuations joined."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        joined.append(pending + line)
        pending = ""
    return joined


def stages() -> list[list[str]]:
    """The instructions of each stage, each list starting with its ``FROM``."""
    found: list[list[str]] = []
    for line in instructions(DOCKERFILE.read_text()):
        if line.startswith("FROM "):
            found.append([])
        assert found, f"an instruction before the first FROM: {line}"
        found[-1].append(line)
    return found


def build_and_final_stages() -> tuple[list[str], list[str]]:
    """The stage that builds the wheel and the stage the image runs."""
    all_stages = stages()
    assert len(all_stages) == 2, [stage[0] for stage in all_stages]
    return all_stages[0], all_stages[1]


def copied_sources(stage: list[str]) -> list[tuple[str, str]]:
    """``(source, destination)`` for each path a stage copies from the build context."""
    copied: list[tuple[str, str]] = []
    for line in stage:
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        *sources, destination = line.split()[1:]
        copied.extend((source, destination) for source in sources)
    return copied
