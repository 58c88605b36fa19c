"""Learning rates of B under the decoupled step-size controllers, and the rank-one term, by measurement.

For each structure, dimension, multiplier of the group's default ``η_B`` and setting of ``rank_one``,
runs es_ngd (step_size="csa" unless --step-size says otherwise) on problems the structure can
represent and records evaluations to f ≤ 1e-8, the largest condition number of S seen, how often the
step bound acted and why the run stopped. A rate is "stable" when the step bound never acts and the
run reaches the target.

Problems (minimum 0 at a seeded optimum, x0 ~ U[-4, 4]^p, σ0 = 2):
- sphere, ellipsoid (separable, condition 1e6), rotated-ellipsoid (the bench's: a random rotation);
- cigar-v / discus-v: one long / one short axis along a seeded random unit vector v, condition 1e6,
  evaluated in O(p) (so p = 1000 costs what the strategy costs, not a p×p rotation).

Usage::

    python benchmarks/step_size_rates.py --structures up:2 --dims 40,100 --multipliers 1,2,4 \\
        --functions sphere,ellipsoid,cigar-v,discus-v --out benchmarks/results/step_size_rates_up2
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _results import command_line, write_results

import es_ngd
from es_ngd.bench.functions import make_problem


def _axis_problem(name: str, p: int, seed: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    rng = np.random.default_rng([seed, p, *name.encode()])
    x_opt = rng.uniform(-3, 3, p)
    v = rng.standard_normal(p)
    v /= np.linalg.norm(v)
    long_axis = name == "cigar-v"

    def f(X: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(X) - x_opt
        along = (z @ v) ** 2
        total = (z * z).sum(1)
        # cigar: 1e6 everywhere but along v; discus: 1 everywhere but 1e6 along v
        return 1e6 * (total - along) + along if long_axis else (total - along) + 1e6 * along

    x0 = np.random.default_rng([seed, p, *name.encode(), 0]).uniform(-4, 4, p)
    return f, x0


def problem(name: str, p: int, seed: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    if name in ("cigar-v", "discus-v"):
        return _axis_problem(name, p, seed)
    built = make_problem(name, p, seed)
    return built.evaluate, built.x0


def run(structure: str, name: str, p: int, seed: int, multiplier: float, rank_one: bool, step_size: str,
        budget: float) -> dict:
    f, x0 = problem(name, p, seed)
    rate = multiplier * es_ngd.make_group(structure, p).default_learning_rate
    es = es_ngd.NGDES(x0, 2.0, structure=structure, seed=seed, lr_factor=rate, rank_one=rank_one,
                      step_size=step_size, ftarget=1e-8, maxfevals=budget)
    worst_condition, start = 0.0, time.perf_counter()
    while not es.stop():
        X = es.ask()
        es.tell(X, f(X))
        if es.state.iterations % 20 == 0:
            worst_condition = max(worst_condition, es.group.condition_number(es.state.factor))
    r = es.result
    return {"structure": structure, "function": name, "p": p, "seed": seed, "multiplier": multiplier,
            "rate": rate, "rank_one": rank_one, "step_size": step_size, "success": r.fbest <= 1e-8,
            "evaluations": r.evaluations, "fbest": r.fbest, "max_condition": worst_condition,
            "step_bound_hits": r.step_bound_hits, "stop": sorted(r.stop), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", default="up:2")
    parser.add_argument("--dims", default="40,100")
    parser.add_argument("--multipliers", default="1,2,4")
    parser.add_argument("--rank-one", default="false,true", help="comma-separated: false, true")
    parser.add_argument("--step-size", default="csa")
    parser.add_argument("--functions", default="sphere,ellipsoid,cigar-v,discus-v")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--budget", type=float, default=1e4, help="evaluations per dimension")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    rows = []
    header = [f"command: {command_line(argv)}",
              f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
              f"numpy {np.__version__}, es_ngd {es_ngd.__version__}",
              "columns: structure p function rank_one multiplier rate | evaluations to 1e-8 per seed (F: final f) "
              "| max cond(S) | step-bound hits | stop reasons", ""]
    print("\n".join(header), flush=True)
    lines = list(header)
    for structure in args.structures.split(";"):
        for p in (int(d) for d in args.dims.split(",")):
            for name in args.functions.split(","):
                for rank_one in (v.strip() == "true" for v in args.rank_one.split(",")):
                    for multiplier in (float(m) for m in args.multipliers.split(",")):
                        runs = [run(structure, name, p, int(seed), multiplier, rank_one, args.step_size,
                                    args.budget * p) for seed in args.seeds.split(",")]
                        rows.extend(runs)
                        evals = " ".join(str(r["evaluations"]) if r["success"] else f"F{r['fbest']:.1e}"
                                         for r in runs)
                        line = (f"{structure:8s} {p:5d} {name:18s} r1={int(rank_one)} x{multiplier:<5g} "
                                f"{runs[0]['rate']:.4f} | {evals} | {max(r['max_condition'] for r in runs):.1e} | "
                                f"{sum(r['step_bound_hits'] for r in runs)} | "
                                f"{','.join(sorted({s for r in runs for s in r['stop']}))}")
                        print(line, flush=True)
                        lines.append(line)
    median = {}
    for r in rows:
        if r["success"]:
            median.setdefault((r["structure"], r["p"], r["function"], r["rank_one"], r["multiplier"]), []).append(
                r["evaluations"])
    write_results(args.out, lines, {"command": command_line(argv), "runs": rows,
                                    "median_evaluations": {str(k): float(np.median(v)) for k, v in median.items()},
                                    "budget_per_dim": args.budget})


if __name__ == "__main__":
    main()
