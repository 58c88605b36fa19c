"""Evaluators turn a :class:`~es_ngd.population.Population` into fitness values.

They know nothing of the strategy: only ``len(population)`` and ``population.candidates(indices)``.
Every evaluator returns a float64 array with one value per candidate, in candidate order, and
should be closed (or used as a context manager) when it owns resources.

Every evaluator of es_ngd also takes a per-generation ``context`` (passed to the objective as the keyword
``context``) and has ``evaluate_with_info``, which returns the ``info`` of each candidate's
:class:`~es_ngd.evaluators.outcome.Outcome` next to the values (see :mod:`es_ngd.evaluators.outcome`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from es_ngd.evaluators.outcome import Outcome, context_call, population_outcome, scalar_outcome
from es_ngd.population import Population


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, population: Population) -> np.ndarray: ...

    def close(self) -> None: ...


class _Closeable:
    def evaluate(self, population: Population, context: Any = None) -> np.ndarray:
        """Fitness of every candidate, in candidate order (``context`` goes to the objective, if given)."""
        return self.evaluate_with_info(population, context)[0]

    def evaluate_with_info(self, population: Population, context: Any = None) -> tuple[np.ndarray, list[Any]]:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialEvaluator(_Closeable):
    """Calls ``f(x)`` for each candidate in turn, in this process (the default)."""

    def __init__(self, f: Callable[[Any], float]) -> None:
        self.f = f

    def evaluate_with_info(self, population: Population, context: Any = None) -> tuple[np.ndarray, list[Any]]:
        """Fitness values and the ``info`` of each candidate's :class:`Outcome` (None for bare numbers)."""
        # each row is a copy: an objective that edits its argument (x[:] = clip(x)) must not change
        # the population that tell() compares against
        copy, f = population.group.backend.copy, context_call(self.f, context)
        pairs = [scalar_outcome(f(copy(x)), i) for i, x in enumerate(population.candidates())]
        return np.array([value for value, _ in pairs], dtype=float), [info for _, info in pairs]


class VectorizedEvaluator(_Closeable):
    """Calls ``f(X)`` once with the whole ``(n, p)`` population; ``f`` returns ``n`` values."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def evaluate_with_info(self, population: Population, context: Any = None) -> tuple[np.ndarray, list[Any]]:
        """Fitness values and the per-row ``info`` of the objective's :class:`Outcome` (Nones without one)."""
        # a copy, for the same reason as SerialEvaluator's (one (n, p) copy per generation); not with
        # device noise, where the population is held once and tell() recomputes the rows it compares
        rows = population.candidates()
        if population.regenerable:
            rows = population.group.backend.copy(rows)
        return population_outcome(context_call(self.f, context)(rows), len(population))


#: keyword options of :class:`~es_ngd.evaluators.ray.RayEvaluator` that :func:`es_ngd.optimize` passes on
#: (listed here so that optimize can tell them from strategy options without importing ray)
EVALUATOR_OPTIONS = frozenset({"init_hook", "chunk_size", "num_cpus", "num_gpus", "resources", "timeout", "on_error",
                               "max_retries", "address", "runtime_env", "ray_init", "startup_timeout", "keep_ray"})


def make_evaluator(f: Callable[..., Any], *, vectorized: bool = False, workers: int | None = None,
                   **ray_options: Any) -> Evaluator:
    """The evaluator :func:`es_ngd.optimize` uses for ``f``: serial, vectorised, or Ray with ``workers``."""
    if workers is not None:
        from es_ngd.evaluators.ray import RayEvaluator  # ray is imported only when asked for

        return RayEvaluator(f, num_workers=workers, vectorized=vectorized, **ray_options)
    if ray_options:
        raise TypeError(f"options {sorted(ray_options)} need workers=N (Ray evaluation)")
    return VectorizedEvaluator(f) if vectorized else SerialEvaluator(f)


__all__ = ["EVALUATOR_OPTIONS", "Evaluator", "Outcome", "SerialEvaluator", "VectorizedEvaluator", "make_evaluator"]
