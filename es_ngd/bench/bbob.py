"""The COCO ``bbob`` suite (24 noiseless functions) through ``cocoex``, as :class:`Problem` objects.

``cocoex`` comes from the PyPI package ``coco-experiment``; it is imported only when a bbob problem
is built. No COCO observer is attached: the benchmark does its own counting and logging, exactly as
for the built-in functions, so both suites are reported the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from es_ngd.bench.functions import X0_HALF_WIDTH, Problem

#: the dimensions in which the bbob suite is defined
BBOB_DIMENSIONS = (2, 3, 5, 10, 20, 40)
BBOB_FUNCTIONS = range(1, 25)
BBOB_NAMES = {
    1: "sphere", 2: "ellipsoid", 3: "rastrigin", 4: "bueche-rastrigin", 5: "linear-slope",
    6: "attractive-sector", 7: "step-ellipsoid", 8: "rosenbrock", 9: "rosenbrock-rotated",
    10: "ellipsoid-rotated", 11: "discus", 12: "bent-cigar", 13: "sharp-ridge", 14: "different-powers",
    15: "rastrigin-rotated", 16: "weierstrass", 17: "schaffers-f7", 18: "schaffers-f7-ill",
    19: "griewank-rosenbrock", 20: "schwefel", 21: "gallagher-101", 22: "gallagher-21", 23: "katsuura",
    24: "lunacek",
}


def import_cocoex() -> Any:
    """``cocoex``, or an ImportError that says which package to install."""
    try:
        import cocoex
    except ImportError:
        raise ImportError("the bbob suite needs cocoex: pip install coco-experiment "
                          "(or pip install 'es-ngd[bench]')") from None
    return cocoex


def bbob_function_id(name: str) -> int:
    """The bbob function number of ``"f8"``, ``"8"`` or ``"rosenbrock"``."""
    key = name.strip().lower()
    by_name = {v: k for k, v in BBOB_NAMES.items()}
    if key in by_name:
        return by_name[key]
    digits = key[1:] if key.startswith("f") else key
    if digits.isdigit() and int(digits) in BBOB_FUNCTIONS:
        return int(digits)
    raise ValueError(f"unknown bbob function {name!r}; valid: f1..f24 or "
                     + ", ".join(f"f{k} ({v})" for k, v in BBOB_NAMES.items()))


def bbob_label(function_id: int) -> str:
    return f"f{function_id}-{BBOB_NAMES[function_id]}"


class _CocoProblem:
    """A picklable stand-in for a cocoex problem (those cannot cross processes): built on first use."""

    def __init__(self, function_id: int, dim: int, instance: int) -> None:
        self.key = (function_id, dim, instance)
        self._problem: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self.key, "_problem": None}

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self._problem is None:
            function_id, dim, instance = self.key
            suite = import_cocoex().Suite("bbob", f"instances: {instance}",
                                          f"dimensions: {dim} function_indices: {function_id}")
            self._problem = next(iter(suite))
        rows = np.atleast_2d(np.asarray(X, dtype=float))
        return np.array([self._problem(row) for row in rows])


def bbob_optimum(function_id: int, instance: int) -> float:
    """The optimal value f_opt of a bbob instance.

    cocoex does not expose f_opt. It is a pure function of (function, instance), computed by the same
    bbob-2009 generator in pycma's ``bbobbenchmarks``, whose functions agree with cocoex's to
    machine precision (checked in tests/test_bench.py), so we take it from there.
    """
    import warnings

    from cma import bbobbenchmarks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bbobbenchmarks warns about its own deprecated numpy use
        return float(bbobbenchmarks.instantiate(function_id, instance)[1])


def make_bbob_problem(function_id: int, dim: int, instance: int, x0_seed: int) -> Problem:
    """bbob instance ``instance`` of function ``function_id``, with x0 drawn from ``x0_seed``.

    x0 is drawn uniformly from [-4, 4]^p (the bbob optimum lies in [-4, 4]^p too), the same way as for
    the built-in functions, rather than cocoex's fixed proposal at the origin, so that several seeds
    on one instance are different runs.
    """
    if dim not in BBOB_DIMENSIONS:
        raise ValueError(f"bbob is defined in dimensions {BBOB_DIMENSIONS}, not {dim}")
    import_cocoex()  # fail here, with the install hint, rather than inside a worker process
    rng = np.random.default_rng([x0_seed, instance, dim, function_id])
    x0 = rng.uniform(-X0_HALF_WIDTH, X0_HALF_WIDTH, dim)
    return Problem(name=bbob_label(function_id), dim=dim, instance=instance,
                   evaluate=_CocoProblem(function_id, dim, instance), x0=x0,
                   fopt=bbob_optimum(function_id, instance), kind="bbob")
