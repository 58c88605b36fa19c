"""What a benchmark's results.json records about how it was made: the command, the machine (and how busy it
was), the package versions, the git commit and the definitions of the reported quantities.

Wall times mean little without the machine they were measured on, and a result file is only worth
committing with the exact command that produced it; this module collects both when a run starts.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any


def run_metadata(config: Any, argv: list[str]) -> dict[str, Any]:
    """What results.json records besides the results: command line, machine, versions, settings.

    Taken when the benchmark starts, since that is the code the worker processes load.
    """
    versions = {}
    for package in ("es-ngd", "numpy", "cma", "rich", "matplotlib", "coco-experiment"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "command": shlex.join(["es-ngd", *argv]),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_seconds": None,  # filled in at the end
        "machine": {"platform": platform.platform(), "machine": platform.machine(),
                    "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "load_average_at_start": _load_average()},
        "versions": versions,
        "git": _git_state(),
        "settings": asdict(config),
        "definitions": {
            "success": "best f − f_opt <= target within the budget (whole generations only)",
            "evaluations": "points evaluated by a counting wrapper around the objective",
            "ert": "Σ evaluations over all runs / number of successful runs (inf: no success)",
            "ert_ratio_to_cma": "ert / ert of cma on the same function and dimension (0: only this solver "
                                "succeeded; empty: no cma baseline or neither succeeded)",
            "ms_per_iteration": "Σ wall time / Σ iterations over the runs (objective included)",
            "median_seconds_to_target": "median over the successful runs of the wall time at which the target "
                                        "was first reached (solver and objective, on this machine)",
            "time_ert": "Σ wall seconds over all runs / number of successful runs (inf: no success)",
            "time_ratio_to_cma": "time_ert / time_ert of cma, like ert_ratio_to_cma",
            "ert_ratio_bound, time_ratio_bound": "where cma never reached the target and this solver did: median "
                                                 "evaluations (seconds) to the target / median evaluations (seconds) "
                                                 "of cma's runs, an upper bound of the ratio (shown as '< x')",
            "max_seconds": "a run starts no generation after this many wall seconds (stop reason 'time')",
        },
    }


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none): wall times mean little on a
    machine that was busy with something else."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def describe_machine(machine: dict[str, Any]) -> str:
    """One line naming the machine the wall times were measured on."""
    load = machine.get("load_average_at_start")
    load_text = f", load average {load[0]:g} at the start" if load else ""
    return (f"machine: {machine['platform']}, {machine['cpu_count']} CPUs{load_text}, Python {machine['python']} "
            "(wall times are for this machine)")


def _git_state() -> dict[str, Any] | None:
    """The commit of the es_ngd source tree, when it is a git checkout (None otherwise)."""
    import subprocess

    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "es_ngd"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "uncommitted_changes_in_es_ngd": bool(changes.strip())}


__all__ = ["describe_machine", "run_metadata"]
