"""From run records to the report: per (function, dimension, solver) summary rows, files and table.

Measures, per (function, dimension, solver), over all its runs:

- success rate: runs that reached ``f − f_opt <= target`` within the budget;
- median evaluations to target, over the successful runs only;
- ERT (expected running time, as in COCO): the evaluations of *all* runs, successful or not,
  divided by the number of successes; ∞ when no run succeeded. It is the expected cost of
  reaching the target by restarting independent runs, so one number ranks solvers that succeed
  rarely but cheaply against ones that succeed always but slowly;
- ERT ratio to CMA-ES (below 1: fewer evaluations than CMA-ES);
- median wall time to the target over the successful runs, and the time ERT (the wall time of all
  runs / successes) with its ratio to CMA-ES's: what a generation costs, where evaluations say only
  what an evaluation costs (at p = 1000 a full covariance's O(p²) per sample dominates);
- median wall time per run and time per iteration (the solver's own cost, objective included).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from es_ngd.bench.runner import RunRecord
from es_ngd.bench.solvers import BASELINE


@dataclass(frozen=True)
class SummaryRow:
    function: str
    dim: int
    solver: str
    runs: int
    successes: int
    median_evaluations_to_target: float | None  # None when no run succeeded
    ert: float  # math.inf when no run succeeded
    ert_ratio_to_cma: float | None  # None without a CMA-ES baseline, or when both never succeed
    median_best_precision: float  # median over runs of the best f − f_opt reached
    median_wall_seconds: float
    ms_per_iteration: float
    errors: int  # runs that ended with an exception (counted as unsuccessful)
    kind: str = "generic"  # "generic", "structured" or "bbob"
    median_seconds_to_target: float | None = None  # over the successful runs; None when none succeeded
    time_ert: float = math.inf  # Σ wall seconds of all runs / successes
    time_ratio_to_cma: float | None = None  # time_ert / CMA-ES's, like ert_ratio_to_cma
    # where CMA-ES never reached the target but this solver did: CMA-ES's own cost to the target is more
    # than what it spent, so (median to target here) / (median spent by CMA-ES's runs) bounds the ratio
    ert_ratio_bound: float | None = None
    time_ratio_bound: float | None = None

    @property
    def success_rate(self) -> float:
        return self.successes / self.runs


def expected_running_time(records: Sequence[RunRecord], seconds: bool = False) -> float:
    """Σ evaluations (or wall seconds) of all runs / number of successful runs (∞ without successes)."""
    successes = sum(r.success for r in records)
    spent = sum(r.wall_seconds if seconds else r.evaluations for r in records)
    return spent / successes if successes else math.inf


def _ratio(ert: float, baseline: float | None) -> float | None:
    if baseline is None or (math.isinf(ert) and math.isinf(baseline)):
        return None
    if math.isinf(baseline):
        return 0.0  # this solver succeeds where CMA-ES never does
    return ert / baseline


def summarise(records: Sequence[RunRecord], solvers: Sequence[str]) -> list[SummaryRow]:
    """One row per (function, dim, solver): functions in order of appearance, then dims, then ``solvers``."""
    groups: dict[tuple[str, int, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.function_label, record.spec.dim, record.spec.solver), []).append(record)
    functions = list(dict.fromkeys(record.function_label for record in records))
    dims = sorted({record.spec.dim for record in records})
    rows = []
    for function in functions:
        for dim in dims:
            baseline_runs = groups.get((function, dim, BASELINE))
            baseline = expected_running_time(baseline_runs) if baseline_runs else None
            time_baseline = expected_running_time(baseline_runs, seconds=True) if baseline_runs else None
            for solver in solvers:
                runs = groups.get((function, dim, solver))
                if not runs:
                    continue
                hits = [r.evaluations_to_target for r in runs if r.evaluations_to_target is not None]
                seconds = [r.seconds_to_target for r in runs if r.seconds_to_target is not None]
                ert, time_ert = expected_running_time(runs), expected_running_time(runs, seconds=True)
                iterations = sum(r.iterations for r in runs)
                wall = sum(r.wall_seconds for r in runs)
                rows.append(SummaryRow(
                    function=function, dim=dim, solver=solver, runs=len(runs), successes=len(hits),
                    median_evaluations_to_target=statistics.median(hits) if hits else None,
                    ert=ert, ert_ratio_to_cma=_ratio(ert, baseline),
                    median_best_precision=statistics.median(r.best_precision for r in runs),
                    median_wall_seconds=statistics.median(r.wall_seconds for r in runs),
                    ms_per_iteration=1e3 * wall / iterations if iterations else math.nan,
                    errors=sum(r.stop_reasons[0].startswith("error") for r in runs if r.stop_reasons),
                    kind=runs[0].kind, median_seconds_to_target=statistics.median(seconds) if seconds else None,
                    time_ert=time_ert, time_ratio_to_cma=_ratio(time_ert, time_baseline),
                    ert_ratio_bound=_bound(hits, baseline_runs, "evaluations"),
                    time_ratio_bound=_bound(seconds, baseline_runs, "wall_seconds")))
    return rows


def _bound(to_target: Sequence[float], baseline_runs: Sequence[RunRecord] | None, spent: str) -> float | None:
    """Upper bound of the ratio to CMA-ES when only this solver reached the target (else None)."""
    if not to_target or not baseline_runs or any(r.success for r in baseline_runs):
        return None
    return statistics.median(to_target) / statistics.median(getattr(r, spent) for r in baseline_runs)


# -- files -----------------------------------------------------------------------------------------

def _json_safe(value: Any) -> Any:
    """inf/nan as the strings "inf"/"nan" (strict JSON has no such numbers; Python's float() reads them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: Path, metadata: dict[str, Any], rows: Sequence[SummaryRow],
               records: Sequence[RunRecord]) -> None:
    """Metadata (command, machine, versions, settings), summary rows and every run, with its history."""
    document = {**metadata, "summary": [asdict(row) for row in rows], "runs": [r.to_dict() for r in records]}
    path.write_text(dump_results(document))


def dump_results(document: dict[str, Any]) -> str:
    """``document`` as JSON: indented, except that each run (with its long history) is one line."""
    runs = document.get("runs", [])
    head = json.dumps(_json_safe({**document, "runs": []}), indent=1, allow_nan=False)
    lines = ",\n  ".join(json.dumps(_json_safe(run), allow_nan=False) for run in runs)
    assert head.endswith('"runs": []\n}')
    return head[: -len('[]\n}')] + ("[\n  " + lines + "\n ]\n}\n" if runs else "[]\n}\n")


def write_summary_csv(path: Path, rows: Sequence[SummaryRow]) -> None:
    names = [*SummaryRow.__dataclass_fields__, "success_rate"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if (value := getattr(row, name)) is None else value for name in names])


def write_runs_csv(path: Path, records: Sequence[RunRecord]) -> None:
    """One line per run (no histories: those are in the JSON file)."""
    spec_names = list(records[0].spec.__dataclass_fields__) if records else []
    names = ["function_label", "kind", *spec_names, "evaluations", "iterations", "success", "evaluations_to_target",
             "seconds_to_target", "best_precision", "wall_seconds", "stop_reasons"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for r in records:
            reached = "" if r.evaluations_to_target is None else r.evaluations_to_target
            seconds = "" if r.seconds_to_target is None else r.seconds_to_target
            writer.writerow([r.function_label, r.kind, *(getattr(r.spec, n) for n in spec_names), r.evaluations,
                             r.iterations, r.success, reached, seconds, r.best_precision, r.wall_seconds,
                             ";".join(r.stop_reasons)])


# -- terminal table --------------------------------------------------------------------------------

def format_count(value: float | None) -> str:
    """Evaluation counts: ``12,345``, ``1.2e+06`` when large, ``∞``, or ``—`` when there is none."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:,.0f}" if value < 1e6 else f"{value:.2g}"


def format_ratio(row: SummaryRow, seconds: bool = False) -> str:
    """The ERT ratio to CMA-ES (or the time ERT ratio, with ``seconds``) as the table shows it."""
    ert, ratio = (row.time_ert, row.time_ratio_to_cma) if seconds else (row.ert, row.ert_ratio_to_cma)
    bound = row.time_ratio_bound if seconds else row.ert_ratio_bound
    if row.solver == BASELINE:
        return "—" if math.isinf(ert) else "1"
    if ratio is None:
        return "—"
    if math.isinf(ert):
        return "∞"
    if ratio == 0.0:
        return f"< {bound:.2g} (CMA ✗)" if bound is not None else "0 (CMA ∞)"
    return f"{ratio:.2f}" if ratio >= 0.01 else f"{ratio:.1e}"


def format_seconds_to_target(row: SummaryRow) -> str:
    """Median seconds to the target; without a success, ``> t``: the median run gave up after t seconds."""
    if row.median_seconds_to_target is None:
        return f"> {row.median_wall_seconds:.3g}"
    return f"{row.median_seconds_to_target:.3g}"


def _ratio_style(ratio: float | None, solver: str) -> str:
    if ratio is None or solver == BASELINE:
        return ""
    return "green" if ratio < 1 else "red" if ratio > 1 else ""


def _styled(text: str, style: str) -> str:
    return f"[{style}]{text}[/{style}]" if style else text


def rich_table(rows: Sequence[SummaryRow], title: str) -> Any:
    """The summary as a ``rich.table.Table``, one section per (function, dim)."""
    from rich import box
    from rich.table import Table

    # a light box and two-line headers keep the ten columns readable in a 100-column terminal
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("function\n(kind)", overflow="fold")
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("solver", no_wrap=True)
    for name in ("success", "median\nevals", "median s\nto target", "ERT", "ERT /\nCMA-ES", "time /\nCMA-ES",
                 "best\nf−f_opt", "ms /\niter"):
        table.add_column(name, justify="right", no_wrap=True)
    sections: dict[tuple[str, int], int] = {}
    for row in rows:
        sections[(row.function, row.dim)] = sections.get((row.function, row.dim), 0) + 1
    previous, position = None, 0
    for row in rows:
        key = (row.function, row.dim)
        if previous is not None and key != previous:
            table.add_section()
        position = position + 1 if key == previous else 0
        previous = key
        # the problem's name on its section's first line, its kind (generic or structured) on the second
        label = {0: row.function, 1: f"[dim]({row.kind})[/dim]"}.get(position, "")
        if position == 0 and sections[key] == 1:
            label += f" [dim]({row.kind})[/dim]"
        success = f"{row.successes}/{row.runs}" + (f" ({row.errors} err)" if row.errors else "")
        table.add_row(label, str(row.dim) if position == 0 else "", row.solver, success,
                      format_count(row.median_evaluations_to_target), format_seconds_to_target(row),
                      format_count(row.ert), _styled(format_ratio(row), _ratio_style(row.ert_ratio_to_cma, row.solver)),
                      _styled(format_ratio(row, seconds=True), _ratio_style(row.time_ratio_to_cma, row.solver)),
                      f"{row.median_best_precision:.1e}", f"{row.ms_per_iteration:.2f}")
    return table


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The summary as a Markdown table (for README files of stored results)."""
    lines = ["| function | kind | p | solver | success | median evals | median s to target | ERT | ERT / CMA-ES "
             "| time / CMA-ES | best f−f_opt | ms / iter |", "|---|---|---:|---|" + "---:|" * 8]
    for row in rows:
        lines.append(f"| {row.function} | {row.kind} | {row.dim} | {row.solver} | {row.successes}/{row.runs} | "
                     f"{format_count(row.median_evaluations_to_target)} | {format_seconds_to_target(row)} | "
                     f"{format_count(row.ert)} | {format_ratio(row)} | {format_ratio(row, seconds=True)} | "
                     f"{row.median_best_precision:.1e} | {row.ms_per_iteration:.2f} |")
    return "\n".join(lines) + "\n"
