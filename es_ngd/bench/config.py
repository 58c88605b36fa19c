"""The settings of one benchmark (:class:`BenchConfig`), their defaults, and the runs they expand to.

Two sets of defaults exist. The *quick* one is what ``es-ngd bench`` runs with no options: four
generic functions in p = 10 and two structured problems in p = 30, about a minute on 2 cores. The
*full* one fills in whatever a user who chose some settings left out (e.g. ``es-ngd bench --dims 40``
runs every generic function).

The structure ``fit`` stands for the structures made for each problem
(:func:`es_ngd.bench.structured.fitting_structures`: ``hier:2,3`` on ``arrow``, ``kron(dense,dense)``
on ``kron-quadratic``, …; none on a generic function). Any other structure runs on every problem
whose dimension (and matrix shape, for ``kron(…)``) it can be built for.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from es_ngd.bench.runner import RunSpec
from es_ngd.bench.solvers import CMA_VARIANTS, NGD_PREFIX

#: in --structures: each problem's own fitting structures
FIT = "fit"
DEFAULT_STRUCTURES = ("dense", "diag", "up:2", FIT)
DEFAULT_SOLVERS = tuple(CMA_VARIANTS)  # cma, sep-cma, vkd-cma


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides what a benchmark runs; recorded verbatim in results.json."""

    suite: str = "builtin"  # "builtin", "structured" or "bbob"
    functions: tuple[str, ...] = ()  # generic or structured names, or bbob function ids as strings ("1".."24")
    dims: tuple[int, ...] = (10,)
    structured_dims: tuple[int, ...] = ()  # dims of the structured problems among `functions` (empty: `dims`)
    structures: tuple[str, ...] = DEFAULT_STRUCTURES  # es_ngd structures (or FIT); solver name "ngd:<structure>"
    cma_solvers: tuple[str, ...] = DEFAULT_SOLVERS
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    instances: tuple[int, ...] = ()  # bbob instances; the built-in suite uses the seed as instance
    budget_per_dim: float = 1e4  # evaluations per dimension: a run in p dimensions gets budget_per_dim · p
    target: float = 1e-8  # success: f − f_opt <= target
    sigma0: float = 2.0  # initial step size, for every solver
    max_seconds: float | None = None  # wall-time limit per run, for every solver (None: none)
    quick: bool = False
    jobs: int = 1
    out: str = "es-ngd-bench"

    @property
    def solvers(self) -> tuple[str, ...]:
        """Every solver that runs on some problem, es_ngd structures first, in the order of the report."""
        ngd = [solver for function, dim in self.problems() for solver in self.ngd_solvers(function, dim)]
        return tuple(dict.fromkeys(ngd)) + self.cma_solvers

    def budget(self, dim: int) -> int:
        return math.floor(self.budget_per_dim * dim)

    def suite_of(self, function: str) -> str:
        """The suite a function's runs belong to (a structured problem may appear in a builtin run)."""
        from es_ngd.bench.structured import STRUCTURED

        return "structured" if self.suite != "bbob" and function in STRUCTURED else self.suite

    def problems(self) -> list[tuple[str, int]]:
        """Every (function, dimension) pair, largest dimension first."""
        pairs = []
        for function in self.functions:
            dims = self.structured_dims if self.structured_dims and self.suite_of(function) == "structured" \
                else self.dims
            pairs.extend((function, dim) for dim in dims)
        return sorted(pairs, key=lambda pair: -pair[1])

    def ngd_solvers(self, function: str, dim: int) -> tuple[str, ...]:
        """The es_ngd solvers that run on (function, dim): :data:`FIT` expanded, inapplicable ones left out."""
        from es_ngd.bench.structured import fitting_structures

        names: list[str] = []
        for structure in self.structures:
            candidates = fitting_structures(function, dim) if structure == FIT else (structure,)
            names.extend(NGD_PREFIX + s for s in candidates if _applies(s, function, dim))
        return tuple(dict.fromkeys(names))

    def skipped(self) -> list[tuple[str, str, int]]:
        """(structure, function, dim) for each explicitly given structure that cannot run on a problem."""
        return [(structure, function, dim) for function, dim in self.problems() for structure in self.structures
                if structure != FIT and not _applies(structure, function, dim)]

    def runs(self) -> list[RunSpec]:
        """One :class:`RunSpec` per (function, dimension, problem instance, seed, solver).

        Every solver gets exactly the same (function, dim, instance, seed) combinations, budget,
        target and sigma0. Runs are ordered with the most expensive (largest dimension) first, so a
        process pool is not left waiting for one long run at the end.
        """
        specs = []
        for function, dim in self.problems():
            for instance, seed in self._instance_seed_pairs():
                for solver in self.ngd_solvers(function, dim) + self.cma_solvers:
                    specs.append(RunSpec(solver=solver, suite=self.suite_of(function), function=function,
                                         dim=dim, instance=instance, seed=seed, budget=self.budget(dim),
                                         target=self.target, sigma0=self.sigma0, max_seconds=self.max_seconds))
        return specs

    def _instance_seed_pairs(self) -> list[tuple[int, int]]:
        if self.suite == "bbob":  # every instance with every seed (the seed also draws x0)
            return [(instance, seed) for instance in self.instances for seed in self.seeds]
        return [(seed, seed) for seed in self.seeds]  # built-in functions: one instance per seed


@functools.cache
def _applies(structure: str, function: str, dim: int) -> bool:
    """Whether es_ngd's group ``structure`` can be built for the problem (its dimension and matrix shape)."""
    from es_ngd.bench.solvers import parse_ngd_solver
    from es_ngd.bench.structured import STRUCTURED, matrix_shape
    from es_ngd.groups import make_group, parse_structure

    spec = STRUCTURED.get(function)
    group = parse_ngd_solver(NGD_PREFIX + structure)[0]
    is_kron = parse_structure(group)[0] == "kron"
    if is_kron and (spec is None or not spec.matrix):
        return False  # a kron structure needs x to be a matrix
    try:
        make_group(group, dim, **({"shape": matrix_shape(dim)} if is_kron else {}))
    except ValueError:
        return False
    return True


#: ``es-ngd bench`` with no options: 4 generic functions in p = 10 and 2 structured problems in p = 30,
#: × 3 seeds × (dense, diag, up:2, the fitting structure and 3 pycma variants): about a minute on 2 cores
QUICK = {
    "builtin": {"functions": ("sphere", "rotated-ellipsoid", "cigar", "rosenbrock", "arrow", "kron-quadratic"),
                "dims": (10,), "structured_dims": (30,), "seeds": (1, 2, 3), "budget_per_dim": 2000.0},
    "structured": {"functions": ("arrow", "kron-quadratic", "lowrank-covariance"), "dims": (50,),
                   "seeds": (1, 2, 3), "budget_per_dim": 2000.0, "structures": (FIT,)},
    "bbob": {"functions": ("1", "8", "10", "12"), "dims": (5,), "seeds": (1,), "instances": (1, 2, 3),
             "budget_per_dim": 2000.0},
}

#: what options left out default to, once some were given
FULL = {
    "builtin": {"functions": ("sphere", "ellipsoid", "rotated-ellipsoid", "cigar", "discus",
                              "different-powers", "rosenbrock", "rastrigin", "ackley"),
                "dims": (10,), "seeds": (1, 2, 3, 4, 5), "budget_per_dim": 1e4},
    # dense and tril fit every problem too, at O(p³) per generation: --structures fit,dense adds them
    "structured": {"functions": ("arrow", "arrow-rosenbrock", "kron-quadratic", "kron-logistic", "ar-toeplitz",
                                 "sparse-cholesky", "lowrank-precision", "lowrank-covariance"),
                   "dims": (100,), "seeds": (1, 2, 3, 4, 5), "budget_per_dim": 2000.0, "structures": (FIT,)},
    "bbob": {"functions": tuple(str(k) for k in range(1, 25)), "dims": (10,), "seeds": (1,),
             "instances": (1, 2, 3, 4, 5), "budget_per_dim": 1e4},
}
