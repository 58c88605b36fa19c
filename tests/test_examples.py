"""Every example runs and reaches what it claims."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
# what each example must reach (examples written by other features add their own rows)
TARGETS = {"ask_tell_quickstart.py": 1e-10, "optimize_rosenbrock.py": 1e-10}


def test_every_example_is_covered() -> None:
    assert {p.name for p in EXAMPLES} <= set(TARGETS) | set(OTHER_EXAMPLES)


# examples whose main() returns something other than a Result with fbest are checked for running only
OTHER_EXAMPLES: set[str] = set()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = runpy.run_path(str(path))["main"]()
    assert capsys.readouterr().out  # it tells the user something
    if path.name in TARGETS:
        assert result.fbest < TARGETS[path.name]
