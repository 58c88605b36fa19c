"""Milliseconds per generation of ask + tell on a GPU: numpy, CUDA (host and device noise), EvoTorch's SNES,
and the memory-bandwidth bound, for p·n from 10⁶ to 10⁹.

One run on a GPU machine (sized for an NVIDIA H200: about 4–5 minutes including CUDA start-up):

    python benchmarks/gpu_generation.py

(writes benchmarks/results/gpu_generation.json and .txt). Smoke test without a GPU, torch on the CPU
at tiny sizes (under a minute):

    python benchmarks/gpu_generation.py --device cpu --quick --out /tmp/gpu_gen_smoke.json

Rows: structure × (p, n), n ∈ {100, 1000} and p = p·n / n with p·n ∈ {10⁶, 10⁷, 10⁸, 10⁹} (``--quick``:
n = 100, p·n ≤ 10⁸; ``--device cpu``: n ∈ {10, 100}, p·n ∈ {10⁴, 10⁵, 10⁶}, with ``--quick`` n = 100 and
p·n ≤ 10⁵). Structures: ``diag``, ``up:2``, ``toeplitz``, ``kron(dense,dense)`` (``shape=(r, c)``,
r·c = p, r the largest divisor of p not above √p) and ``dense`` (only for p ≤ ``--dense-max-p``, 4096:
p² parameters and O(p³) work per generation; 256 with ``--device cpu``). A row whose estimated memory
exceeds ``--max-gib`` is skipped, and the table says why.

Columns (one generation = ``X = es.ask(); es.tell(X, f(X))``, the sphere as objective ``f``):

* numpy: ``es_ngd.NGDES(..., backend="numpy")`` in float64 (numpy's only fast path), objective
  ``np.einsum("ij,ij->i", X, X)``; only for p·n ≤ ``--numpy-max-pn`` (10⁷) and, after every other
  cell (so that a slow CPU cannot eat the GPU rows' time), at the (p, n) of ``--numpy-also`` (10⁶ × 100).
* host / device: ``backend="torch", device="cuda", dtype="float32"`` with ``noise="host"`` (numpy's
  generator, copied to the device; only for p·n ≤ ``--host-max-pn``, 10⁸: above it numpy draws
  10⁹ normals per generation, seconds each) and ``noise="device"`` (drawn on the device). Objective:
  ``torch.linalg.vector_norm(X, dim=1).square()`` (no n·p temporary; ``--objective sum_sq``:
  ``(X * X).sum(1)``), handed to ``tell`` as a device tensor; a cell whose backend reports another
  ``es.backend.noise`` than the one asked for is an error.
* SNES: EvoTorch's ``SNES(Problem("min", f, solution_length=p, initial_bounds=(-1, 1), vectorized=True,
  device=..., dtype=torch.float32), stdev_init=1.0, popsize=n)``, time per ``searcher.step()``; only
  on diag rows (SNES is separable).
* bound: bytes that must move per generation / peak bandwidth, with this bytes model (s = itemsize of
  the GPU dtype, 4 for float32; the same number for every column of a row)::

      bytes = 5·n·p·s + 2·P·s
      5·n·p·s: the population x written once (ask), read once by the objective and once by tell;
               the noise z written once and read once (the device path may regenerate z in tell
               instead of storing it: that is again one write and one read of n·p values, so the
               model counts one such pass, whichever way z is kept)
      2·P·s:   the factor's P parameters read and written once (P = p for diag and toeplitz, 3p for
               up:2, r² + c² for kron, p² for dense)

  It ignores the host→device copy of the host path, fitness vectors, and any FFT or matmul
  temporaries: a floor for a streaming implementation, not a model of es_ngd's kernels.
  Peak bandwidth: ``--peak-gbps``, else measured as a device-to-device copy of a 4 GiB tensor
  (``dst.copy_(src)``, CUDA events, best of 5; bandwidth = 2·bytes/time). ``--device cpu``: a host
  copy of 256 MiB timed with perf_counter instead.
* device/bound: device ms / bound ms; vs numpy: numpy ms / device ms (float64 against float32);
  peak GiB: ``torch.cuda.max_memory_allocated()`` (reset before each cell), the largest over the
  row's CUDA cells (per cell in the JSON).

Device noise, once before the cells (CUDA only; skipped on ``--device cpu``): the share of
``es_ngd.device_noise.device_normals`` values (2000 rows × 1000 columns, float32, one key) that are
bit-identical on CUDA and on torch's CPU, with the largest difference; and ``device_normals`` alone for
10⁸ float32 values on CUDA (CUDA events, best of 3), in ms and in GB/s counted as 4 bytes written per
value: how far the eager generator (about 20 elementwise passes over int64/float64 temporaries) is from
the bandwidth bound. Both run under try/except and never stop the run.

Timing: per cell, ``--warmup`` (2) generations, then k generations (k such that the timed part takes
about ``--cell-seconds``, 0.5 s; k ∈ [``--min-gens``, ``--max-gens``] = [3, 20]), each between
``torch.cuda.synchronize()`` calls, timed with ``time.perf_counter``; the median ms is reported. Every
cell runs under try/except (out of memory and any other error are printed in the cell) and frees its
memory before the next one. Cells run small to large, except that numpy at ``--numpy-also`` and host
noise above ``--numpy-max-pn`` come after all the others (in that order), so that a slow host cannot take
the time of the GPU rows. A cell whose time, extrapolated from the same structure and column at the
previous size, exceeds ``--max-cell-seconds`` (20 s), or would take the
run past ``--time-budget`` (240 s on CUDA, 45 s on the CPU), is skipped, and the skips are listed.
The table is printed at the end (stdout); progress per cell goes to stderr, and the result files
are rewritten after every cell, so a run cut short still leaves what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _gpu_model import (
    device_noise_check,
    family,
    fmt_pn,
    kron_shape,
    machine,
    measure_bandwidth,
    memory_gib,
    model_bytes,
    noise_check_lines,
    work,
)
from _results import command_line, write_results

import es_ngd

RESULTS = Path(__file__).resolve().parent / "results"
STRUCTURES = ["diag", "up:2", "toeplitz", "kron(dense,dense)", "dense"]
COLUMNS = ["numpy", "host", "device", "snes"]
Step = Callable[[], None]


# -- cells ------------------------------------------------------------------------------------------
@dataclass
class Row:
    structure: str
    p: int
    n: int
    bound_bytes: int
    est_gib: float
    skip: str | None = None  # why the whole row is skipped
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def pn(self) -> int:
        return self.p * self.n

    def options(self) -> dict[str, Any]:
        return {"shape": kron_shape(self.p)} if family(self.structure) == "kron" else {}


def torch_objective(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if kind == "vector_norm":
        return lambda X: torch.linalg.vector_norm(X, dim=1).square()
    return lambda X: (X * X).sum(1)


def numpy_objective(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X)


def es_ngd_step(es: Any, objective: Callable[[Any], Any]) -> Step:
    def step() -> None:
        X = es.ask()
        es.tell(X, objective(X))

    return step


def build_step(column: str, row: Row, ctx: Context) -> tuple[Step, dict[str, Any]]:
    """The function that runs one generation of ``column`` on ``row``, and facts about it for the JSON."""
    x0 = np.ones(row.p)
    if column == "numpy":
        es = es_ngd.NGDES(x0, 1.0, structure=row.structure, popsize=row.n, seed=1, **row.options())
        return es_ngd_step(es, numpy_objective), {"dtype": "float64"}
    if column in ("host", "device"):
        es = es_ngd.NGDES(x0, 1.0, structure=row.structure, popsize=row.n, seed=1, backend="torch",
                          device=ctx.device, dtype=ctx.dtype, noise=column, **row.options())
        if es.backend.noise != column:
            raise RuntimeError(f"asked noise={column!r}, the backend reports noise={es.backend.noise!r}")
        return es_ngd_step(es, ctx.objective), {"dtype": ctx.dtype, "noise": es.backend.noise}
    from evotorch import Problem
    from evotorch.algorithms import SNES

    problem = Problem("min", ctx.objective, solution_length=row.p, initial_bounds=(-1, 1), vectorized=True,
                      device=ctx.device, dtype=getattr(torch, ctx.dtype))
    searcher = SNES(problem, stdev_init=1.0, popsize=row.n)
    return searcher.step, {"dtype": ctx.dtype}


def time_generations(step: Step, sync: Callable[[], None], args: argparse.Namespace) -> dict[str, Any]:
    warm = []
    for _ in range(args.warmup):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        warm.append(time.perf_counter() - t0)
    guess = warm[-1] if warm else 0.0
    k = max(args.min_gens, min(args.max_gens, int(args.cell_seconds / guess) if guess > 0 else args.max_gens))
    seconds = []
    for _ in range(k):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        seconds.append(time.perf_counter() - t0)
    return {"ms": 1e3 * statistics.median(seconds), "ms_min": 1e3 * min(seconds), "ms_max": 1e3 * max(seconds),
            "generations": k, "warmup_ms": [1e3 * s for s in warm]}


@dataclass
class Context:
    args: argparse.Namespace
    device: str
    dtype: str
    objective: Callable[[torch.Tensor], torch.Tensor]
    evotorch_error: str | None
    start: float = field(default_factory=time.perf_counter)
    history: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # → (work, s per gen)
    budget_skips: list[str] = field(default_factory=list)

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def not_applicable(column: str, row: Row, ctx: Context) -> dict[str, Any] | None:
    """The cell of ``column`` if it is not measured by design ("-") or cannot be ("n/a"); None to run it."""
    args = ctx.args
    if column == "numpy":
        if row.pn > args.numpy_max_pn and (row.p, row.n) not in args.numpy_also:
            return {"status": "-"}
        gib = memory_gib(row.structure, row.p, row.n, 8)
        if gib > args.max_gib:
            return {"status": "skip", "note": f"numpy (float64) needs about {gib:.0f} GiB > --max-gib {args.max_gib:g}"}
    if column == "host" and row.pn > args.host_max_pn:
        return {"status": "-"}
    if column == "snes":
        if row.structure != "diag" or args.no_evotorch:
            return {"status": "-"}
        if ctx.evotorch_error:
            return {"status": "n/a", "note": f"evotorch unavailable: {ctx.evotorch_error}"}
    return None


def estimate_seconds(column: str, row: Row, ctx: Context) -> float | None:
    """The cell's time extrapolated from the same structure and column at the last size measured."""
    previous = ctx.history.get((column, row.structure))
    if previous is None:
        return None
    per_gen = previous[1] * work(row.structure, row.p, row.n) / previous[0]
    args = ctx.args
    k = max(args.min_gens, min(args.max_gens, int(args.cell_seconds / per_gen) if per_gen > 0 else args.max_gens))
    return per_gen * (args.warmup + k)


def run_cell(column: str, row: Row, ctx: Context) -> dict[str, Any]:
    cell = not_applicable(column, row, ctx)
    if cell is not None:
        return cell
    args = ctx.args
    estimate = estimate_seconds(column, row, ctx)
    if estimate is not None and estimate > args.max_cell_seconds:
        return {"status": "skip", "estimate_s": estimate,
                "note": f"estimated {estimate:.0f} s (extrapolated from the previous size) > --max-cell-seconds "
                        f"{args.max_cell_seconds:g}"}
    if ctx.elapsed() + (estimate if estimate is not None else 1.0) > args.time_budget:
        ctx.budget_skips.append(f"{row.structure} p={row.p} n={row.n} {column}"
                                + (f" (estimated {estimate:.1f} s)" if estimate is not None else ""))
        return {"status": "skip", "note": "time budget (--time-budget) used up"}
    cuda_cell = ctx.device == "cuda" and column != "numpy"
    if cuda_cell:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        cell = measure(column, row, ctx)
    except torch.cuda.OutOfMemoryError as error:
        cell = {"status": "OOM", "note": f"out of memory: {str(error).splitlines()[0][:200]}"}
    except Exception as error:  # one broken cell must not end the run
        cell = {"status": "error", "note": f"{type(error).__name__}: {str(error).splitlines()[0][:240]}"
                if str(error) else type(error).__name__}
    gc.collect()  # the exception's frames held the cell's arrays until here
    if ctx.device == "cuda":
        torch.cuda.empty_cache()
    cell["seconds"] = time.perf_counter() - t0
    if cuda_cell:
        cell["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if cell["status"] == "ok":
        ctx.history[(column, row.structure)] = (work(row.structure, row.p, row.n), cell["ms"] / 1e3)
    return cell


def measure(column: str, row: Row, ctx: Context) -> dict[str, Any]:
    step, facts = build_step(column, row, ctx)
    sync = ctx.sync if column != "numpy" else (lambda: None)
    return {"status": "ok", **facts, **time_generations(step, sync, ctx.args)}


# -- table ------------------------------------------------------------------------------------------
def fmt_ms(ms: float) -> str:
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


class Notes:
    """Numbered footnotes, one number per distinct text."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}

    def mark(self, text: str) -> str:
        return f"[{self.texts.setdefault(text, len(self.texts) + 1)}]"

    def lines(self) -> list[str]:
        return [f"[{number}] {text}" for text, number in self.texts.items()]


def cell_text(cell: dict[str, Any] | None, notes: Notes) -> str:
    if cell is None:
        return ""
    mark = notes.mark(cell["note"]) if cell.get("note") else ""
    if cell["status"] == "ok":
        return fmt_ms(cell["ms"]) + mark
    return cell["status"] + mark


def table(rows: list[Row], ctx: Context) -> list[str]:
    dev = ctx.device
    names = ["structure", "p", "n", "p·n", "numpy f64 ms", f"{dev}-host ms", f"{dev}-device ms", "SNES ms",
             "bound ms", "device/bound", "vs numpy", "peak GiB"]
    widths = [17, 9, 5, 4, 13, 13, 15, 11, 9, 12, 9, 8]
    notes = Notes()
    lines = ["  ".join(name.rjust(w) for name, w in zip(names, widths, strict=True))]
    for row in rows:
        head = [row.structure, str(row.p), str(row.n), fmt_pn(row.pn)]
        if row.skip is not None:
            cells = [*head, "skipped" + notes.mark(row.skip)]
            lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False)))
            continue
        bound = row_bound_ms(row, ctx)
        device, numpy_ = row.cells.get("device", {}), row.cells.get("numpy", {})
        peaks = [c["peak_gib"] for c in row.cells.values() if c.get("peak_gib") is not None]
        ratio = f"{device['ms'] / bound:.3g}" if device.get("status") == "ok" else ""
        speedup = (f"{numpy_['ms'] / device['ms']:.3g}x"
                   if device.get("status") == "ok" and numpy_.get("status") == "ok" else "")
        cells = [*head, *(cell_text(row.cells.get(c), notes) for c in COLUMNS), fmt_ms(bound), ratio, speedup,
                 f"{max(peaks):.2f}" if peaks else "n/a"]
        lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    return [*lines, "", *notes.lines()]


def row_bound_ms(row: Row, ctx: Context) -> float:
    return 1e3 * row.bound_bytes / (ctx.args.peak_gbps * 1e9)


# -- main -------------------------------------------------------------------------------------------
def pair(text: str) -> tuple[int, int]:
    """``PxN`` (e.g. ``1000000x100``) as ``(p, n)``."""
    p, n = text.lower().split("x")
    return int(float(p)), int(float(n))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: torch on the CPU at tiny sizes (a smoke test without a GPU)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes")
    parser.add_argument("--pn", type=float, nargs="+", default=None, help="values of p·n (default: by mode)")
    parser.add_argument("--popsizes", type=int, nargs="+", default=None, help="values of n (default: by mode)")
    parser.add_argument("--structures", nargs="+", default=STRUCTURES)
    parser.add_argument("--dtype", default="float32", help="torch dtype on the device")
    parser.add_argument("--objective", choices=["vector_norm", "sum_sq"], default="vector_norm")
    parser.add_argument("--peak-gbps", type=float, default=None, help="peak bandwidth (default: measured)")
    parser.add_argument("--max-gib", type=float, default=60.0, help="skip rows whose estimated memory exceeds this")
    parser.add_argument("--dense-max-p", type=int, default=None, help="default 4096 (cuda), 256 (cpu)")
    parser.add_argument("--numpy-max-pn", type=float, default=None, help="default 1e7 (cuda), 1e6 (cpu)")
    parser.add_argument("--numpy-also", type=pair, nargs="*", default=None, metavar="PxN",
                        help="(p, n) where numpy also runs, after every other cell (default: 1000000x100 on cuda)")
    parser.add_argument("--host-max-pn", type=float, default=1e8, help="largest p·n with host noise")
    parser.add_argument("--no-evotorch", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cell-seconds", type=float, default=0.5, help="target length of a cell's timed part")
    parser.add_argument("--min-gens", type=int, default=3)
    parser.add_argument("--max-gens", type=int, default=20)
    parser.add_argument("--max-cell-seconds", type=float, default=20.0,
                        help="skip a cell whose extrapolated time exceeds this")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds (default 240 on cuda, 45 on cpu)")
    parser.add_argument("--out", type=Path, default=None,
                        help="OUT.json and OUT.txt (default results/gpu_generation[_cpu_smoke].json)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if args.pn is None:
        args.pn = ([1e6, 1e7, 1e8] if args.quick else [1e6, 1e7, 1e8, 1e9]) if cuda else \
                  ([1e4, 1e5] if args.quick else [1e4, 1e5, 1e6])
    if args.popsizes is None:
        args.popsizes = ([100] if args.quick else [100, 1000]) if cuda else ([100] if args.quick else [10, 100])
    if args.dense_max_p is None:
        args.dense_max_p = 4096 if cuda else 256
    if args.numpy_max_pn is None:
        args.numpy_max_pn = 1e7 if cuda else 1e6
    if args.numpy_also is None:
        args.numpy_also = [(10**6, 100)] if cuda else []
    if args.time_budget is None:
        args.time_budget = 240.0 if cuda else 45.0
    if args.out is None:
        args.out = RESULTS / ("gpu_generation.json" if cuda else "gpu_generation_cpu_smoke.json")
    return args


def make_rows(args: argparse.Namespace, itemsize: int) -> list[Row]:
    rows = []
    for pn in sorted({int(x) for x in args.pn}):
        for n in sorted(args.popsizes):
            p = pn // n
            if p < 2 or p * n != pn:
                continue
            for structure in args.structures:
                row = Row(structure, p, n, model_bytes(structure, p, n, itemsize),
                          memory_gib(structure, p, n, itemsize))
                if family(structure) == "dense" and p > args.dense_max_p:
                    row.skip = (f"dense only for p <= --dense-max-p {args.dense_max_p}: p² parameters "
                                "and O(p³) work per generation")
                elif row.est_gib > args.max_gib:
                    row.skip = f"estimated {row.est_gib:.0f} GiB > --max-gib {args.max_gib:g}"
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    start = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device (use --device cpu for a smoke test)", file=sys.stderr)
        return 1
    command = command_line(argv)
    info = machine(args.device)
    if args.peak_gbps is None:
        bandwidth = measure_bandwidth(args.device)
        args.peak_gbps = bandwidth["gbps"]
    else:
        bandwidth = {"gbps": args.peak_gbps, "method": "given (--peak-gbps)"}
    noise_check = device_noise_check(args.device)
    evotorch_error = None
    if not args.no_evotorch:
        try:
            import evotorch.algorithms  # noqa: F401

            logging.getLogger("evotorch").setLevel(logging.WARNING)  # not one INFO line per Problem
        except Exception as error:
            evotorch_error = f"{type(error).__name__}: {error}"
    ctx = Context(args, args.device, args.dtype, torch_objective(args.objective), evotorch_error, start=start)
    itemsize = torch.empty(0, dtype=getattr(torch, args.dtype)).element_size()
    rows = make_rows(args, itemsize)
    objective = ("torch.linalg.vector_norm(X, dim=1).square() (no n·p temporary)" if args.objective == "vector_norm"
                 else "(X * X).sum(1)")
    header = [
        f"command: {command}",
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {info['node']}, {info['cpu']} ({info['cpu_count']} CPUs), GPU {info['gpu'] or 'none'}, "
        f"python {info['python']}, numpy {info['numpy']}, torch {info['torch']}, es_ngd {info['es_ngd']}, "
        f"evotorch {info['evotorch']}",
        f"bandwidth: {bandwidth['gbps']:.0f} GB/s ({bandwidth['method']}"
        + (f"; median {bandwidth['gbps_median']:.0f} GB/s)" if "gbps_median" in bandwidth else ")"),
        f"dtypes: torch {args.dtype} on {args.device}; numpy float64 (its only fast path)",
        f"objective: torch {objective}; numpy np.einsum('ij,ij->i', X, X)",
        *noise_check_lines(noise_check, args.peak_gbps),
        f"bound: bytes = 5·n·p·s + 2·P·s (s = {itemsize}: x written, read by f and by tell; z written and read; "
        "factor's P parameters read and written) / bandwidth",
        f"columns: numpy for p·n <= {args.numpy_max_pn:g}" + "".join(f", and p={p} n={n}" for p, n in args.numpy_also)
        + f" (else -); host noise for p·n <= {args.host_max_pn:g} (else -); SNES on diag rows only (else -); "
        "vs numpy = numpy ms / device ms; peak GiB = max over the row's CUDA cells",
        f"timing: median of k in [{args.min_gens}, {args.max_gens}] generations after {args.warmup} warm-up, "
        f"about {args.cell_seconds:g} s per cell; time budget {args.time_budget:g} s",
        "",
    ]
    report: dict[str, Any] = {"command": command, "machine": info, "bandwidth": bandwidth,
                              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "device_noise": noise_check, "bytes_model": "5*n*p*s + 2*P*s", "complete": False}
    print("\n".join(header), file=sys.stderr, flush=True)

    def save() -> list[str]:
        lines = [*header, *table(rows, ctx)]
        if ctx.budget_skips:
            lines += ["", f"skipped for the time budget ({len(ctx.budget_skips)} cells): "
                      + "; ".join(ctx.budget_skips)]
        lines.append(f"elapsed: {time.perf_counter() - start:.0f} s")
        report.update(rows=[{"structure": r.structure, "p": r.p, "n": r.n, "pn": r.pn, "bound_bytes": r.bound_bytes,
                             "bound_ms": row_bound_ms(r, ctx), "estimated_gib": r.est_gib, "skip": r.skip,
                             "shape": list(kron_shape(r.p)) if family(r.structure) == "kron" else None,
                             "cells": r.cells} for r in rows],
                      budget_skips=ctx.budget_skips, elapsed_s=time.perf_counter() - start)
        write_results(args.out, lines, report)
        return lines

    # first every cell at p·n <= --numpy-max-pn and the device and SNES cells at every size, then (so that a slow
    # host cannot take the GPU rows' time) numpy at --numpy-also, then host noise above --numpy-max-pn
    late = {"numpy": 0, "host": 1}
    cells = [(row, column) for row in rows if row.skip is None for column in ("device", "host", "snes", "numpy")]
    cells.sort(key=lambda cell: -1 if cell[0].pn <= args.numpy_max_pn else late.get(cell[1], -1))  # stable
    for row in rows:
        if row.skip is not None:
            print(f"{row.structure} p={row.p} n={row.n}: skipped ({row.skip})", file=sys.stderr, flush=True)
    for row, column in cells:
        cell = run_cell(column, row, ctx)
        row.cells[column] = cell
        if cell["status"] != "-":
            shown = f"{cell['ms']:.3f} ms ({cell['generations']} generations)" if cell["status"] == "ok" else \
                cell["status"]
            print(f"[{ctx.elapsed():5.0f} s] {row.structure} p={row.p} n={row.n} {column}: {shown}"
                  + (f" -- {cell['note']}" if cell.get("note") else ""), file=sys.stderr, flush=True)
            save()
    report["complete"] = True
    print("\n".join(save()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
