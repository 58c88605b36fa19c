"""Per-iteration time of ask + tell against pycma, in one run, as ratios (issue: core).

Each solver runs with its default population size on a trivial objective (the sphere, vectorised,
so the objective costs nothing next to the strategy), for at least ``--min-iters`` generations and
``--min-seconds`` seconds, so that pycma's periodic eigendecompositions are included in its average.
The solvers of one dimension take turns in ``--rounds`` rounds, so a machine that slows down for a
while (a shared VM) slows every solver alike instead of skewing one ratio.

Pairs compared (es_ngd structure against the pycma variant with the same covariance model):
``dense`` vs full CMA-ES, ``diag`` vs sep-CMA (``CMA_diagonal``), ``up:K`` vs VkD-CMA
(``GaussVkDSampler.extend_cma_options``).

    python benchmarks/iteration_time.py --dims 100 1000 10000 --out benchmarks/results/iteration_time
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _results import command_line, write_results

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


def time_per_iteration(factories: dict[str, SolverFactory], p: int, rounds: int, min_iters: int,
                       min_seconds: float) -> dict[str, dict[str, float]]:
    """Milliseconds per ask + tell of each solver, measured in interleaved rounds.

    Every solver runs once per round (for ``min_seconds / rounds`` seconds and ``min_iters / rounds``
    generations at least), so a shared machine that slows down for a while slows all of them alike
    instead of skewing one ratio; each solver's time is the total over the rounds.
    """
    solvers = {name: make(p) for name, make in factories.items()}
    for ask, tell in solvers.values():  # warm-up generation (first-call allocations, imports)
        x = ask()
        tell(x, np.sum(np.asarray(x) ** 2, axis=1))
    totals = {name: [0.0, 0] for name in solvers}
    for _ in range(rounds):
        for name, (ask, tell) in solvers.items():
            iters, start = 0, time.perf_counter()
            while iters < min_iters / rounds or time.perf_counter() - start < min_seconds / rounds:
                x = ask()
                tell(x, np.sum(np.asarray(x) ** 2, axis=1))
                iters += 1
            totals[name][0] += time.perf_counter() - start
            totals[name][1] += iters
    return {name: {"ms_per_iter": 1e3 * seconds / iters, "iterations": iters, "popsize": len(x)}
            for name, (seconds, iters) in totals.items()}


# (es_ngd structure, pycma anchor, largest p at which to run the pair: dense algebra is O(p³))
PAIRS = [("dense", "full", 1000), ("diag", "sep", 10**6), ("up:2", "vkd", 10**6), ("up:5", "vkd", 10**6)]
TARGETS = {"dense": "no slower than full CMA-ES at p = 100", "diag": "faster than sep-CMA",
           "up:2": ">= 3x faster than VkD-CMA at p >= 1000", "up:5": ">= 3x faster than VkD-CMA at p >= 1000"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--min-iters", type=int, default=30)
    parser.add_argument("--min-seconds", type=float, default=3.0, help="per solver and dimension, in total")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the time is split into")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pycma warns about tolerances set to 0

    import cma

    command = command_line(argv)
    machine = (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
               f"{__import__('os').cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}, "
               f"cma {cma.__version__}, es_ngd {es_ngd.__version__}")
    lines = [f"command: {command}", f"machine: {machine}", "",
             f"{'p':>7} {'es_ngd':>7} {'ms/iter':>9} {'pycma':>6} {'ms/iter':>9} {'speed-up':>9}  target"]
    rows = []
    for p in args.dims:
        pairs = [(structure, anchor) for structure, anchor, max_p in PAIRS if p <= max_p]
        factories: dict[str, SolverFactory] = {structure: es_ngd_solver(structure) for structure, _ in pairs}
        factories.update({anchor: pycma_solver(anchor) for _, anchor in pairs})
        times = time_per_iteration(factories, p, args.rounds, args.min_iters, args.min_seconds)
        for structure, anchor in pairs:
            ours, theirs = times[structure], times[anchor]
            speedup = theirs["ms_per_iter"] / ours["ms_per_iter"]
            rows.append({"p": p, "structure": structure, "anchor": anchor, "es_ngd": ours, "pycma": theirs,
                         "speedup": speedup, "target": TARGETS[structure]})
            lines.append(f"{p:>7} {structure:>7} {ours['ms_per_iter']:>9.3f} {anchor:>6} "
                         f"{theirs['ms_per_iter']:>9.3f} {speedup:>8.2f}x  {TARGETS[structure]}")
            print(lines[-1] if len(rows) > 1 else "\n".join(lines), flush=True)
    if args.out:
        write_results(args.out, lines, {"command": command, "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
