"""What every benchmark script records: the command that produced a result, and the result files."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (``argv`` as given to ``main``, else the process's own)."""
    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])


def write_results(out: Path, lines: list[str], report: dict[str, Any]) -> None:
    """``OUT.txt`` (the printed table, command and machine at the top) and ``OUT.json`` (everything)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
