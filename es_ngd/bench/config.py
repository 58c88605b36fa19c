"""The settings of one benchmark (:class:`BenchConfig`), their defaults, and the runs they expand to.

Two sets of defaults exist. The *quick* one is what ``es-ngd bench`` runs with no options: a
small suite in p = 10 that finishes in about a minute on 2 cores. The *full* one fills in whatever
a user who chose some settings left out (e.g. ``es-ngd bench --dims 40`` runs every function).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from es_ngd.bench.runner import RunSpec
from es_ngd.bench.solvers import CMA_VARIANTS, NGD_PREFIX

DEFAULT_STRUCTURES = ("dense", "diag", "up:2")
DEFAULT_SOLVERS = tuple(CMA_VARIANTS)  # cma, sep-cma, vkd-cma


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides what a benchmark runs; recorded verbatim in results.json."""

    suite: str = "builtin"  # "builtin" or "bbob"
    functions: tuple[str, ...] = ()  # built-in names, or bbob function ids as strings ("1".."24")
    dims: tuple[int, ...] = (10,)
    structures: tuple[str, ...] = DEFAULT_STRUCTURES  # es_ngd structures; solver name "ngd:<structure>"
    cma_solvers: tuple[str, ...] = DEFAULT_SOLVERS
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    instances: tuple[int, ...] = ()  # bbob instances; the built-in suite uses the seed as instance
    budget_per_dim: float = 1e4  # evaluations per dimension: a run in p dimensions gets budget_per_dim · p
    target: float = 1e-8  # success: f − f_opt <= target
    sigma0: float = 2.0  # initial step size, for every solver
    quick: bool = False
    jobs: int = 1
    out: str = "es-ngd-bench"

    @property
    def solvers(self) -> tuple[str, ...]:
        """Every solver, es_ngd structures first, in the order of the report."""
        return tuple(NGD_PREFIX + s for s in self.structures) + self.cma_solvers

    def budget(self, dim: int) -> int:
        return math.floor(self.budget_per_dim * dim)

    def runs(self) -> list[RunSpec]:
        """One :class:`RunSpec` per (function, dimension, problem instance, seed, solver).

        Every solver gets exactly the same (function, dim, instance, seed) combinations, budget,
        target and sigma0. Runs are ordered with the most expensive (largest dimension) first, so a
        process pool is not left waiting for one long run at the end.
        """
        specs = []
        for dim in sorted(self.dims, reverse=True):
            for function in self.functions:
                for instance, seed in self._instance_seed_pairs():
                    for solver in self.solvers:
                        specs.append(RunSpec(solver=solver, suite=self.suite, function=function, dim=dim,
                                             instance=instance, seed=seed, budget=self.budget(dim),
                                             target=self.target, sigma0=self.sigma0))
        return specs

    def _instance_seed_pairs(self) -> list[tuple[int, int]]:
        if self.suite == "bbob":  # every instance with every seed (the seed also draws x0)
            return [(instance, seed) for instance in self.instances for seed in self.seeds]
        return [(seed, seed) for seed in self.seeds]  # built-in functions: one instance per seed


#: ``es-ngd bench`` with no options: 4 functions × 6 solvers × 3 seeds in p = 10, about a minute on 2 cores
QUICK = {
    "builtin": {"functions": ("sphere", "rotated-ellipsoid", "cigar", "rosenbrock"), "dims": (10,),
                "seeds": (1, 2, 3), "budget_per_dim": 2000.0},
    "bbob": {"functions": ("1", "8", "10", "12"), "dims": (5,), "seeds": (1,), "instances": (1, 2, 3),
             "budget_per_dim": 2000.0},
}

#: what options left out default to, once some were given
FULL = {
    "builtin": {"functions": ("sphere", "ellipsoid", "rotated-ellipsoid", "cigar", "discus",
                              "different-powers", "rosenbrock", "rastrigin", "ackley"),
                "dims": (10,), "seeds": (1, 2, 3, 4, 5), "budget_per_dim": 1e4},
    "bbob": {"functions": tuple(str(k) for k in range(1, 25)), "dims": (10,), "seeds": (1,),
             "instances": (1, 2, 3, 4, 5), "budget_per_dim": 1e4},
}
