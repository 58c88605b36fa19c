"""Per-iteration time of ask + tell against pycma, in one run, as ratios (issue: core).

Each solver runs with its default population size on a trivial objective (the sphere, vectorised,
so the objective costs nothing next to the strategy), for at least ``--min-iters`` generations and
``--min-seconds`` seconds, so that pycma's periodic eigendecompositions are included in its average.

Pairs compared (es_ngd structure against the pycma variant with the same covariance model):
``dense`` vs full CMA-ES, ``diag`` vs sep-CMA (``CMA_diagonal``), ``up:K`` vs VkD-CMA
(``GaussVkDSampler.extend_cma_options``).

    python benchmarks/iteration_time.py --dims 100 1000 10000 --out benchmarks/results/iteration_time
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import es_ngd

SolverFactory = Callable[[int], tuple[Callable[[], np.ndarray], Callable[[np.ndarray, np.ndarray], None]]]


def es_ngd_solver(structure: str) -> SolverFactory:
    def make(p: int):
        es = es_ngd.NGDES(np.ones(p), 1.0, structure=structure, seed=1, tolx=0, tolfun=0, max_condition=np.inf)
        return es.ask, es.tell

    return make


def pycma_solver(variant: str) -> SolverFactory:
    def make(p: int):
        import cma
        from cma.restricted_gaussian_sampler import GaussVkDSampler

        opts = {"seed": 1, "verbose": -9, "tolx": 0, "tolfun": 0, "tolfunhist": 0, "tolstagnation": 1e9}
        if variant == "sep":
            opts["CMA_diagonal"] = True
        elif variant == "vkd":
            opts = GaussVkDSampler.extend_cma_options(opts)
        es = cma.CMAEvolutionStrategy(np.ones(p), 1.0, opts)

        def ask() -> np.ndarray:
            return np.asarray(es.ask())

        def tell(x: np.ndarray, f: np.ndarray) -> None:
            es.tell(list(x), list(f))

        return ask, tell

    return make


def time_per_iteration(factory: SolverFactory, p: int, min_iters: int, min_seconds: float) -> dict[str, float]:
    ask, tell = factory(p)
    x = ask()  # warm-up generation (first-call allocations, imports)
    tell(x, np.sum(np.asarray(x) ** 2, axis=1))
    iters, start = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - start < min_seconds:
        x = ask()
        tell(x, np.sum(np.asarray(x) ** 2, axis=1))
        iters += 1
    elapsed = time.perf_counter() - start
    return {"ms_per_iter": 1e3 * elapsed / iters, "iterations": iters, "popsize": len(x)}


# (es_ngd structure, pycma anchor, largest p at which to run the pair: dense algebra is O(p³))
PAIRS = [("dense", "full", 1000), ("diag", "sep", 10**6), ("up:2", "vkd", 10**6), ("up:5", "vkd", 10**6)]
TARGETS = {"dense": "no slower than full CMA-ES at p = 100", "diag": "faster than sep-CMA",
           "up:2": ">= 3x faster than VkD-CMA at p >= 1000", "up:5": ">= 3x faster than VkD-CMA at p >= 1000"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--min-iters", type=int, default=30)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pycma warns about tolerances set to 0

    import cma

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    machine = (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
               f"{__import__('os').cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}, "
               f"cma {cma.__version__}, es_ngd {es_ngd.__version__}")
    lines = [f"command: {command}", f"machine: {machine}", "",
             f"{'p':>7} {'es_ngd':>7} {'ms/iter':>9} {'pycma':>6} {'ms/iter':>9} {'speed-up':>9}  target"]
    rows = []
    cache: dict[tuple[str, int], dict[str, float]] = {}
    for p in args.dims:
        for structure, anchor, max_p in PAIRS:
            if p > max_p:
                continue
            ours = time_per_iteration(es_ngd_solver(structure), p, args.min_iters, args.min_seconds)
            if (anchor, p) not in cache:
                cache[anchor, p] = time_per_iteration(pycma_solver(anchor), p, args.min_iters, args.min_seconds)
            theirs = cache[anchor, p]
            speedup = theirs["ms_per_iter"] / ours["ms_per_iter"]
            rows.append({"p": p, "structure": structure, "anchor": anchor, "es_ngd": ours, "pycma": theirs,
                         "speedup": speedup, "target": TARGETS[structure]})
            lines.append(f"{p:>7} {structure:>7} {ours['ms_per_iter']:>9.3f} {anchor:>6} "
                         f"{theirs['ms_per_iter']:>9.3f} {speedup:>8.2f}x  {TARGETS[structure]}")
            print(lines[-1] if len(rows) > 1 else "\n".join(lines), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(
            {"command": command, "machine": machine, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
