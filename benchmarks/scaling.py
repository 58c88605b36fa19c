"""Per-iteration time against the dimension p for every structure, with the fitted growth exponent.

One iteration is ``ask`` + ``tell`` at the default population size ``4 + ⌊3 ln p⌋`` on a trivial
objective (the sphere, vectorised), averaged over at least ``--min-iters`` generations and
``--min-seconds`` seconds after one warm-up generation. The exponent is the least-squares slope of
log(time) against log(p); MATH.md §4 predicts the cost per iteration in ``n`` and ``p``, and since
``n`` grows like ``ln p`` a linear-cost structure fits slightly above 1.

On a machine shared with other jobs, run BLAS single-threaded: a second BLAS thread that waits for a
busy core slows the dense algebra (dense, tril, kron) down 3–12 times, erratically:

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/scaling.py --out benchmarks/results/scaling
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _results import command_line, write_results

import es_ngd


@dataclass(frozen=True)
class Case:
    label: str  # how the structure appears in the table
    structure: Callable[[int], str]  # the structure string at dimension p
    dims: list[int]  # the dimensions to time
    predicted: str  # growth exponent predicted by MATH.md §4
    shape: Callable[[int], tuple[int, int]] | None = None  # matrix shape of x (kron)


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

LINEAR = [1_000, 10_000, 100_000, 1_000_000]
SQUARES = [32**2, 100**2, 316**2]  # kron with square factors: p = r², each dense factor r × r
CUBIC = [500, 1_000, 2_000]  # dense algebra, O(np² + p³): only to a few thousand

CASES = [
    Case("diag", lambda p: "diag", LINEAR, "1"),
    Case("up:2", lambda p: "up:2", LINEAR, "1"),
    Case("low:2", lambda p: "low:2", LINEAR, "1"),
    Case("hier:2,2", lambda p: "hier:2,2", LINEAR, "1"),
    Case("hier-up:2,2", lambda p: "hier-up:2,2", LINEAR, "1"),
    Case("sparse:(p-4)/2,4", lambda p: f"sparse:{(p - 4) // 2},4", LINEAR, "1"),
    Case("toeplitz", lambda p: "toeplitz", LINEAR, "1 (× log p)"),
    Case("kron(dense,dense)", lambda p: "kron(dense,dense)", SQUARES, "1.5",
         shape=lambda p: (math.isqrt(p), math.isqrt(p))),
    Case("tril", lambda p: "tril", CUBIC, "2–3"),
    Case("dense", lambda p: "dense", CUBIC, "2–3"),
]


def time_per_iteration(case: Case, p: int, min_iters: int, min_seconds: float) -> dict[str, float]:
    options = {"shape": case.shape(p)} if case.shape else {}
    es = es_ngd.NGDES(np.ones(p), 1.0, structure=case.structure(p), seed=1, **options)

    def generation() -> None:
        x = es.ask()
        es.tell(x, (x * x).sum(1))

    generation()  # warm-up (first-call allocations, FFT plans)
    iters, start = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - start < min_seconds:
        generation()
        iters += 1
    elapsed = time.perf_counter() - start
    return {"seconds_per_iter": elapsed / iters, "iterations": iters, "popsize": es.popsize}


def slope(dims: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(p)."""
    return float(np.polyfit(np.log(dims), np.log(seconds), 1)[0])


def machine() -> str:
    import torch

    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other jobs while this ran), python {platform.python_version()}, "
            f"numpy {np.__version__}, torch {torch.__version__}, es_ngd {es_ngd.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-p", type=int, default=10**6, help="skip larger dimensions")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    threads = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    command = " ".join([*threads, command_line(argv)])  # the thread settings change the timings
    header = [f"command: {command}", f"machine: {machine()}", "backend: numpy, float64", ""]
    print("\n".join(header), flush=True)
    timings, rows = [], []
    for case in CASES:
        dims, seconds = [], []
        for p in (p for p in case.dims if p <= args.max_p):
            result = time_per_iteration(case, p, args.min_iters, args.min_seconds)
            dims.append(p)
            seconds.append(result["seconds_per_iter"])
            timings.append({"structure": case.label, "p": p, **result})
            print(f"  {case.label:<18} p = {p:>9,}  {1e3 * result['seconds_per_iter']:>10.2f} ms/iter "
                  f"(n = {result['popsize']}, {result['iterations']} iterations)", flush=True)
        fitted = slope(dims, seconds) if len(dims) > 1 else math.nan
        rows.append({"structure": case.label, "dims": dims, "seconds_per_iter": seconds, "fitted_exponent": fitted,
                     "predicted_exponent": case.predicted})
    table = [f"{'structure':<18} {'p':>28}   {'ms / iteration':<44} {'fitted':>6}  predicted"]
    for row in rows:
        dims = " ".join(f"{p:.0e}".replace("e+0", "e") for p in row["dims"])
        times = " ".join(f"{1e3 * s:.3g}" for s in row["seconds_per_iter"])
        table.append(f"{row['structure']:<18} {dims:>28}   {times:<44} {row['fitted_exponent']:>6.2f}  "
                     f"{row['predicted_exponent']}")
    print("\n" + "\n".join(table), flush=True)
    if args.out:
        write_results(args.out, header + table,
                      {"command": command, "machine": machine(), "timings": timings, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
