"""The sample-efficiency targets, read off `es-ngd bench` summaries: es_ngd's ERT against its pycma anchor.

For each pair (es_ngd solver, pycma anchor) and dimension: the ERT ratio on every function both solve
(at least once), its median over those functions, the worst function, and the functions only one of
them solves. The pairs are the like-for-like models: ``ngd:dense`` ↔ CMA-ES, ``ngd:diag`` ↔ sep-CMA-ES,
``ngd:up:2`` ↔ VkD-CMA-ES (the last on the functions a rank-2-plus-diagonal covariance can represent).
With ``--before DIR`` the same solvers of an earlier run (e.g. es_ngd 0.1's) are put side by side.

Usage::

    python benchmarks/step_size_targets.py benchmarks/results/cma_comparison \\
        --before benchmarks/results/cma_comparison_0.1_xnes --out benchmarks/results/step_size/targets_builtin
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

from _results import command_line, write_results

PAIRS = [("ngd:dense", "cma"), ("ngd:diag", "sep-cma"), ("ngd:up:2", "vkd-cma")]
#: functions whose Hessian a rank-2-plus-diagonal covariance can represent (built-in names and bbob ids)
LOW_RANK_REPRESENTABLE = {"sphere", "ellipsoid", "cigar", "discus", "f1-sphere", "f2-ellipsoid", "f11-discus",
                          "f12-bent-cigar"}


def read_summary(directory: Path) -> dict[tuple[str, int, str], float]:
    """(function, dim, solver) → ERT (inf when no run succeeded)."""
    ert = {}
    with open(directory / "summary.csv") as file:
        for row in csv.DictReader(file):
            ert[(row["function"], int(row["dim"]), row["solver"])] = float(row["ert"])
    return ert


def compare(ert: dict, solver: str, anchor: str, dim: int, restrict: set[str] | None) -> dict:
    functions = sorted({f for f, d, s in ert if d == dim and s == solver and (restrict is None or f in restrict)})
    ratios, only_ours, only_anchor = {}, [], []
    for function in functions:
        ours, theirs = ert.get((function, dim, solver), math.inf), ert.get((function, dim, anchor), math.inf)
        if math.isfinite(ours) and math.isfinite(theirs):
            ratios[function] = ours / theirs
        elif math.isfinite(ours):
            only_ours.append(function)
        elif math.isfinite(theirs):
            only_anchor.append(function)
    median = statistics.median(ratios.values()) if ratios else math.nan
    worst = max(ratios.items(), key=lambda kv: kv[1]) if ratios else (None, math.nan)
    return {"solver": solver, "anchor": anchor, "dim": dim, "ratios": ratios, "median": median,
            "worst": worst, "only_ours": only_ours, "only_anchor": only_anchor}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="es-ngd bench output directories")
    parser.add_argument("--before", type=Path, nargs="*", default=[], help="earlier runs, same solvers")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    ert: dict = {}
    for directory in args.results:
        ert.update(read_summary(directory))
    before: dict = {}
    for directory in args.before:
        before.update(read_summary(directory))
    dims = sorted({d for _, d, _ in ert})
    lines = [f"command: {command_line(argv)}", "ERT ratio es_ngd / anchor (< 1: es_ngd needs fewer evaluations), "
             "over the functions both solve at least once", ""]
    report = []
    for solver, anchor in PAIRS:
        restrict = LOW_RANK_REPRESENTABLE if anchor == "vkd-cma" else None
        for dim in dims:
            result = compare(ert, solver, anchor, dim, restrict)
            if not result["ratios"] and not result["only_ours"] and not result["only_anchor"]:
                continue
            report.append(result)
            worst_name, worst_ratio = result["worst"]
            lines.append(f"{solver} vs {anchor}, p = {dim}: median {result['median']:.2f} over "
                         f"{len(result['ratios'])} functions, worst {worst_ratio:.2f} ({worst_name})")
            for function, ratio in result["ratios"].items():
                was = ""
                if before:
                    old, old_anchor = before.get((function, dim, solver)), before.get((function, dim, anchor))
                    if old is not None and old_anchor is not None and math.isfinite(old_anchor):
                        was = f"   (before: {old / old_anchor:.2f})" if math.isfinite(old) else "   (before: unsolved)"
                lines.append(f"    {function:24s} {ratio:6.2f}{was}")
            if result["only_ours"]:
                lines.append(f"    solved by {solver} only: {', '.join(result['only_ours'])}")
            if result["only_anchor"]:
                lines.append(f"    solved by {anchor} only: {', '.join(result['only_anchor'])}")
            lines.append("")
    print("\n".join(lines))
    write_results(args.out, lines, {"command": command_line(argv), "pairs": report})


if __name__ == "__main__":
    main()
