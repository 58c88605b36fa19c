"""Small triangular solves: numpy's LAPACK solve against scipy's trsm, and what it does to tril per iteration.

Sampling a triangular group is one solve ``z B⁻¹`` with ``B`` p × p and 16-row blocks of noise, and
``stop()`` solves against the identity. scipy's ``solve_triangular`` calls LAPACK/BLAS trsm, which
OpenBLAS (scipy's own copy, with its own thread pool beside numpy's) spreads over its threads even for
an 8 × 8 system; waking them costs far more than the arithmetic (the hardening issue measured 8 ms per
call with the default thread count, 0.04 ms with one). ``numpy.linalg.solve`` (LAPACK gesv: LU, then
two triangular solves) stays on one thread for small matrices, and :class:`~es_ngd.backend.NumpyBackend`
uses it up to ``SMALL_TRIANGULAR``. This script times both for a range of p, and ``ask`` + ``tell`` +
``stop`` for ``tril`` with each, and reports the largest p where numpy's solve is still the faster:

    python benchmarks/triangular_solve.py --out benchmarks/results/triangular_solve

Run it with the default BLAS threading (no OPENBLAS_NUM_THREADS): that is what users get.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _results import command_line, write_results
from scipy.linalg import solve_triangular

import es_ngd
import es_ngd.backend as backend_module

DIMS = [2, 4, 8, 16, 32, 64, 128]
ROWS = 16  # es_ngd.population.ROW_BLOCK: the rows of one sampling solve


def best_time(call: Callable[[], object], min_seconds: float) -> float:
    """The fastest of repeated calls (seconds), after one warm-up: the cost without the noise of a busy machine."""
    call()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    return best


def median_time(call: Callable[[], object], min_seconds: float) -> float:
    call()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(times) < 5:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def iteration(p: int, threshold: int, min_seconds: float) -> float:
    """Median seconds of tril ask + tell + stop at dimension p with the given substitution threshold."""
    saved = backend_module.SMALL_TRIANGULAR
    backend_module.SMALL_TRIANGULAR = threshold
    try:
        es = es_ngd.NGDES(np.ones(p), 1.0, structure="tril", seed=1, tolx=0.0, tolfun=0.0)

        def generation() -> None:
            x = es.ask()
            es.tell(x, (x * x).sum(1))
            es._stop_cache = None  # time the full check every generation, as a first stop() after tell does
            es.stop()

        return median_time(generation, min_seconds)
    finally:
        backend_module.SMALL_TRIANGULAR = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="per measurement")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    threads = {name: os.environ.get(name, "default") for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    machine = (f"{platform.platform()}, {os.cpu_count()} CPUs (shared with other jobs while this ran), "
               f"numpy {np.__version__}, BLAS threads: {threads}")
    header = [f"command: {command_line(argv)}", f"machine: {machine}",
              f"solve: B (p×p, lower triangular) against {ROWS} rows, best of repeated calls; "
              "iteration: tril ask + tell + stop, median", ""]
    print("\n".join(header), flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for p in DIMS:
        b = np.tril(rng.standard_normal((p, p))) + 3 * np.eye(p)
        z = rng.standard_normal((ROWS, p))
        scipy_s = best_time(lambda b=b, z=z: solve_triangular(b, z.T, trans="T", lower=True, check_finite=False),
                            args.min_seconds)
        numpy_s = best_time(lambda b=b, z=z: np.linalg.solve(b.T, z.T), args.min_seconds)
        row = {"p": p, "scipy_solve_ms": 1e3 * scipy_s, "numpy_solve_ms": 1e3 * numpy_s,
               "iteration_scipy_ms": 1e3 * iteration(p, 0, args.min_seconds),
               "iteration_numpy_ms": 1e3 * iteration(p, p, args.min_seconds)}
        rows.append(row)
        print(f"  p = {p:>4}: solve scipy {row['scipy_solve_ms']:.4f} ms, numpy {row['numpy_solve_ms']:.4f} ms; "
              f"iteration scipy {row['iteration_scipy_ms']:.3f} ms, numpy {row['iteration_numpy_ms']:.3f} ms",
              flush=True)
    crossover = max((r["p"] for r in rows if r["numpy_solve_ms"] <= r["scipy_solve_ms"]), default=0)
    table = [f"{'p':>5} {'solve scipy ms':>15} {'solve numpy ms':>15} {'tril iter, scipy ms':>20} "
             f"{'tril iter, numpy ms':>20}"]
    table += [f"{r['p']:>5} {r['scipy_solve_ms']:>15.4f} {r['numpy_solve_ms']:>15.4f} {r['iteration_scipy_ms']:>20.3f} "
              f"{r['iteration_numpy_ms']:>20.3f}" for r in rows]
    table += ["", f"largest p where numpy's solve is as fast as scipy's trsm: {crossover} "
              f"(es_ngd.backend.SMALL_TRIANGULAR = {backend_module.SMALL_TRIANGULAR})"]
    print("\n" + "\n".join(table), flush=True)
    if args.out:
        write_results(args.out, header + table, {"command": command_line(argv), "machine": machine, "rows": rows,
                                                 "crossover": crossover,
                                                 "SMALL_TRIANGULAR": backend_module.SMALL_TRIANGULAR})
    return 0


if __name__ == "__main__":
    sys.exit(main())
