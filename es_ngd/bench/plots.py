"""Convergence plots: best f − f_opt against evaluations (or wall seconds), one line per solver, one PNG
per (function, p); and one summary figure of the ERT ratios to CMA-ES, per problem and solver.

Each line is the median over the runs of a solver (the band spans the 25th to 75th percentile).
A run that stopped early keeps its final value to the right of its end, as a best-so-far value
does; before its first generation a run has no value and is left out of the median.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from es_ngd.bench.report import SummaryRow, format_ratio
from es_ngd.bench.runner import RunRecord
from es_ngd.bench.solvers import BASELINE
from es_ngd.bench.structured import fitting_structures

X_AXES = ("evaluations", "seconds")


def best_so_far_on_grid(record: RunRecord, grid: np.ndarray, x_axis: str = "evaluations") -> np.ndarray:
    """The run's best f − f_opt at each evaluation count (or wall second) of ``grid`` (NaN before its first
    point)."""
    if not record.history:
        return np.full(grid.shape, np.nan)
    if x_axis == "seconds":
        if len(record.history_seconds) != len(record.history):  # a record from before times were kept
            return np.full(grid.shape, np.nan)
        at = np.array(record.history_seconds, dtype=float)
    else:
        at = np.array([point[0] for point in record.history], dtype=float)
    values = np.array([point[1] for point in record.history], dtype=float)
    index = np.searchsorted(at, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def _file_stem(function: str, dim: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', function)}_p{dim}"


def plot_convergence(records: Sequence[RunRecord], out_dir: Path, solvers: Sequence[str],
                     target: float, x_axis: str = "evaluations") -> list[Path]:
    """Write one PNG per (function, dim) into ``out_dir``; returns their paths.

    ``x_axis="seconds"`` draws against wall time instead of evaluations, into
    ``convergence_<function>_p<dim>_seconds.png``: where a generation of one solver costs far more
    than one of another (a full covariance at p = 1000), that is the axis a user waits on.
    """
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {X_AXES}, got {x_axis!r}")
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.function_label, record.spec.dim), []).append(record)
    floor = target / 100.0  # log scale: a value of exactly 0 is drawn here, below the target line
    paths = []
    for (function, dim), group in groups.items():
        if x_axis == "seconds":
            grid = np.linspace(0.0, max(r.wall_seconds for r in group), 400)
        else:
            grid = np.unique(np.linspace(1, max(r.spec.budget for r in group), 400).round())
        fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
        for solver in solvers:
            runs = [r for r in group if r.spec.solver == solver]
            if not runs:
                continue
            curves = np.maximum(np.array([best_so_far_on_grid(r, grid, x_axis) for r in runs]), floor)
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
        ax.set_xlabel("evaluations" if x_axis == "evaluations" else "wall seconds (this machine)")
        ax.set_ylabel("best f − f_opt")
        runs_per_solver = max(sum(r.spec.solver == solver for r in group) for solver in solvers)
        ax.set_title(f"{function}, p = {dim} (median of {runs_per_solver} runs per solver)")
        ax.grid(True, which="major", alpha=0.3)
        # the band's meaning goes into the legend, and the legend beside the axes, where it hides no curve
        band = Patch(facecolor="grey", alpha=0.3, label="shaded: 25th–75th\npercentile of runs")
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=[*handles, band], fontsize="small", title="solver (successes)", title_fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        suffix = "_seconds" if x_axis == "seconds" else ""
        path = out_dir / f"convergence_{_file_stem(function, dim)}{suffix}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


#: colour scale of the summary figure: log10 of the ratio, clipped to ±RATIO_DECADES
RATIO_DECADES = 2.0


def _summary_columns(rows: Sequence[SummaryRow]) -> list[str]:
    """Columns of the summary figure: ``ngd: fit`` (each problem's own fitting structure) first, then the
    other es_ngd solvers, then pycma's."""
    columns = ["ngd: fit"] if any(_is_fit(row) for row in rows) else []
    for row in rows:
        if not _is_fit(row) and row.solver not in columns:
            columns.append(row.solver)
    return sorted(columns, key=lambda c: (not c.startswith("ngd"), c == BASELINE))


def _is_fit(row: SummaryRow) -> bool:
    return row.solver.removeprefix("ngd:") in fitting_structures(row.function, row.dim)


def plot_ert_ratios(rows: Sequence[SummaryRow], out_dir: Path) -> Path | None:
    """One figure, ``ert_ratio.png``: per problem (row) and solver (column), the ERT ratio to CMA-ES in
    evaluations (left) and in wall time (right), on a log colour scale (green: better than CMA-ES).

    The column ``ngd: fit`` holds each structured problem's own fitting structure, named in its cell.
    ``∞``: the solver never reached the target; ``CMA ✗``: only CMA-ES never did; ``—``: neither did.
    Returns None when there is nothing to compare (no CMA-ES runs).
    """
    if not any(row.solver == BASELINE for row in rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys((row.function, row.dim, row.kind) for row in rows))
    columns = _summary_columns(rows)
    cells = {((row.function, row.dim, row.kind), "ngd: fit" if _is_fit(row) else row.solver): row
             for row in rows}
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 1.25 * len(columns) * 2, 1.4 + 0.42 * len(problems)),
                             layout="constrained", sharey=True)
    cmap = matplotlib.colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
    for ax, seconds in zip(axes, (False, True), strict=True):
        values = np.full((len(problems), len(columns)), np.nan)
        for (i, problem), (j, column) in ((a, b) for a in enumerate(problems) for b in enumerate(columns)):
            row = cells.get((problem, column))
            if row is None:
                continue
            ert, ratio = (row.time_ert, row.time_ratio_to_cma) if seconds else (row.ert, row.ert_ratio_to_cma)
            bound = row.time_ratio_bound if seconds else row.ert_ratio_bound
            if ratio == 0 and bound is not None:  # only this solver reached the target: colour its bound
                ratio = bound
            if ratio is not None:  # ∞ (never reached) and 0 (CMA-ES never did) go to the ends of the scale
                values[i, j] = RATIO_DECADES if math.isinf(ert) else -RATIO_DECADES if ratio == 0 else \
                    float(np.clip(math.log10(ratio), -RATIO_DECADES, RATIO_DECADES))
            text = format_ratio(row, seconds).replace("0 (CMA ∞)", "CMA ✗").replace(" (CMA ✗)", "\nCMA ✗")
            if column == "ngd: fit":
                text += "\n" + row.solver.removeprefix("ngd:")
            dark = abs(values[i, j]) > 0.6 * RATIO_DECADES  # the ends of the colour scale are dark
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-RATIO_DECADES, vmax=RATIO_DECADES,
                          aspect="auto")
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(problems)), [f"{f} p={d} ({k})" for f, d, k in problems], fontsize=8)
        ax.set_title("ERT / CMA-ES's, in evaluations" if not seconds else "ERT / CMA-ES's, in wall time",
                     fontsize=10)
    bar = fig.colorbar(image, ax=axes, shrink=0.8, ticks=np.arange(-RATIO_DECADES, RATIO_DECADES + 1))
    bar.ax.set_yticklabels([f"{10.0 ** t:g}" for t in np.arange(-RATIO_DECADES, RATIO_DECADES + 1)])
    bar.set_label("ratio (log scale; < 1: better than CMA-ES)")
    fig.suptitle("ERT ratio to CMA-ES (green: fewer evaluations / less time; ∞: never reached the target; "
                 "CMA ✗: only CMA-ES never did; grey: not run, or no baseline)", fontsize=9)
    path = out_dir / "ert_ratio.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
