"""Measurement behind the default learning rates of the structured groups (issue 3).

For each structure, on a quadratic whose Hessian has that structure (tests/structured_problems.py) at
two sizes, run the strategy with rates around the default (``η_B = η_σ = multiplier · base``) for two
seeds and report the evaluations to f < 1e-8, or ``fail(evaluations, step-bound hits, stop reason)``.

    python benchmarks/structured_learning_rates.py --out benchmarks/results/structured_learning_rates
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _results import command_line, write_results

import es_ngd
from es_ngd.groups.base import snes_learning_rate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from structured_problems import ar_precision, arrow_hessian, kronecker_hessian, sparse_hessian

# (structure, Hessian, shape or None); base rate (name, function of the group); multipliers
Case = tuple[str, Callable[[], np.ndarray], tuple[int, int] | None]
GRID: list[tuple[list[Case], str, Callable[[es_ngd.MatrixGroup], float], list[float]]] = [
    ([("hier:2,3", lambda: arrow_hessian(2, 20, 3, 1), None), ("hier:3,5", lambda: arrow_hessian(3, 50, 5, 1), None)],
     "η_SNES/√p", lambda g: snes_learning_rate(g.dim) / math.sqrt(g.dim), [1.0, 1.5, 2.5]),
    ([("sparse:10,5", lambda: sparse_hessian(10, 5, 1), None), ("sparse:25,8", lambda: sparse_hessian(25, 8, 1), None)],
     "η_SNES/√p", lambda g: snes_learning_rate(g.dim) / math.sqrt(g.dim), [1.5, 2.0, 2.5, 4.0]),
    ([("toeplitz", lambda: ar_precision(30, [1.5, -0.75]), None),
      ("toeplitz", lambda: ar_precision(120, [1.5, -0.75]), None)],
     "η_SNES", lambda g: snes_learning_rate(g.dim), [0.5, 0.75, 1.0, 1.25]),
    ([("kron(dense,dense)", lambda: kronecker_hessian(5, 6, 1), (5, 6)),
      ("kron(dense,dense)", lambda: kronecker_hessian(12, 10, 1), (12, 10))],
     "default", lambda g: g.default_learning_rate, [1.0, 2.0, 4.0]),
    ([("kron(diag,dense)", lambda: kronecker_hessian(5, 6, 1), (5, 6)),
      ("kron(tril,low:1)", lambda: kronecker_hessian(5, 6, 1), (5, 6))],
     "default", lambda g: g.default_learning_rate, [1.0, 2.0]),
]


def evaluations(structure: str, hessian: np.ndarray, shape: tuple[int, int] | None, rate: float, seed: int,
                budget: int) -> int | str:
    options = {"shape": shape} if shape else {}
    result = es_ngd.optimize(lambda x: float(0.5 * x @ hessian @ x), np.ones(len(hessian)), 1.0,
                             structure=structure, seed=seed, ftarget=1e-8, maxfevals=budget, lr_factor=rate,
                             **options)
    if result.fbest < 1e-8:
        return result.evaluations
    return f"fail({result.evaluations},{result.step_bound_hits},{next(iter(result.stop), '?')})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=200_000, help="evaluations per run")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    command = command_line(argv)
    machine = (f"{platform.platform()}, {os.cpu_count()} CPUs (shared with other jobs: evaluation counts, "
               f"not times, matter here), numpy {np.__version__}, es_ngd {es_ngd.__version__}")
    lines = [f"command: {command}", f"machine: {machine}",
             "columns: structure, p, multiplier × base, rate, default rate, evaluations to f < 1e-8 for seeds "
             "1 and 2 (fail(evaluations, step-bound hits, stop reason): not reached)", ""]
    print("\n".join(lines), flush=True)
    rows = []
    for cases, base_name, base, multipliers in GRID:
        for structure, make_hessian, shape in cases:
            hessian = make_hessian()
            group = es_ngd.make_group(structure, len(hessian), **({"shape": shape} if shape else {}))
            for multiplier in multipliers:
                rate = multiplier * base(group)
                result = [evaluations(structure, hessian, shape, rate, seed, args.budget) for seed in (1, 2)]
                rows.append({"structure": structure, "p": group.dim, "shape": shape, "base": base_name,
                             "multiplier": multiplier, "rate": rate, "default": group.default_learning_rate,
                             "evaluations": result})
                lines.append(f"{structure:>18} p={group.dim:<4} {multiplier:>5} × {base_name:<10} rate={rate:.4f} "
                             f"(default {group.default_learning_rate:.4f})  {result}")
                print(lines[-1], flush=True)
    if args.out:
        write_results(args.out, lines, {"command": command, "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
