"""Convergence plots: best f − f_opt against evaluations, one line per solver, one PNG per (function, p).

Each line is the median over the runs of a solver (the band spans the 25th to 75th percentile).
A run that stopped early keeps its final value to the right of its end, as a best-so-far value
does; before its first generation a run has no value and is left out of the median.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from es_ngd.bench.runner import RunRecord


def best_so_far_on_grid(record: RunRecord, grid: np.ndarray) -> np.ndarray:
    """The run's best f − f_opt at each evaluation count of ``grid`` (NaN before its first point)."""
    if not record.history:
        return np.full(grid.shape, np.nan)
    evaluations = np.array([point[0] for point in record.history], dtype=float)
    values = np.array([point[1] for point in record.history], dtype=float)
    index = np.searchsorted(evaluations, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def plot_convergence(records: Sequence[RunRecord], out_dir: Path, solvers: Sequence[str],
                     target: float) -> list[Path]:
    """Write one PNG per (function, dim) into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.function_label, record.spec.dim), []).append(record)
    floor = target / 100.0  # log scale: a value of exactly 0 is drawn here, below the target line
    paths = []
    for (function, dim), group in groups.items():
        budget = max(r.spec.budget for r in group)
        grid = np.unique(np.linspace(1, budget, 400).round())
        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
        for solver in solvers:
            runs = [r for r in group if r.spec.solver == solver]
            if not runs:
                continue
            curves = np.maximum(np.array([best_so_far_on_grid(r, grid) for r in runs]), floor)
            seen = ~np.isnan(curves).all(0)
            if not seen.any():
                continue
            low, median, high = np.nanpercentile(curves[:, seen], [25, 50, 75], axis=0)
            label = f"{solver} ({sum(r.success for r in runs)}/{len(runs)})"
            style = "-" if solver.startswith("ngd:") else "--"  # es_ngd solid, pycma dashed
            (line,) = ax.plot(grid[seen], median, label=label, linestyle=style)
            ax.fill_between(grid[seen], low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.axhline(target, color="black", linewidth=0.8, linestyle=":", label=f"target {target:g}")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best f − f_opt")
        runs_per_solver = max(sum(r.spec.solver == solver for r in group) for solver in solvers)
        ax.set_title(f"{function}, p = {dim} (median of {runs_per_solver} runs per solver)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small", title="solver (successes)", title_fontsize="small")
        path = out_dir / f"convergence_{re.sub(r'[^A-Za-z0-9_.-]+', '_', function)}_p{dim}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
