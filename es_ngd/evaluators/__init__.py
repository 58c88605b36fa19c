"""Evaluators turn a :class:`~es_ngd.population.Population` into fitness values.

They know nothing of the strategy: only ``len(population)`` and ``population.candidates(indices)``.
Every evaluator returns a float64 array with one value per candidate, in candidate order, and
should be closed (or used as a context manager) when it owns resources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from es_ngd.population import Population


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, population: Population) -> np.ndarray: ...

    def close(self) -> None: ...


def _as_fitness(values: Any, n: int) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    out = np.asarray(values, dtype=float).reshape(-1)
    if out.shape != (n,):
        raise ValueError(f"the objective returned {out.size} values for {n} candidates")
    return out


class _Closeable:
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

    def evaluate(self, population: Population) -> np.ndarray:
        return _as_fitness([float(self.f(x)) for x in population.candidates()], len(population))


class VectorizedEvaluator(_Closeable):
    """Calls ``f(X)`` once with the whole ``(n, p)`` population; ``f`` returns ``n`` values."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def evaluate(self, population: Population) -> np.ndarray:
        return _as_fitness(self.f(population.candidates()), len(population))


def make_evaluator(f: Callable[..., Any], *, vectorized: bool = False, workers: int | None = None,
                   **ray_options: Any) -> Evaluator:
    """The evaluator :func:`es_ngd.optimize` uses for ``f``: serial, vectorised, or Ray with ``workers``."""
    if workers is not None:
        from es_ngd.evaluators.ray import RayEvaluator  # ray is imported only when asked for

        return RayEvaluator(f, num_workers=workers, vectorized=vectorized, **ray_options)
    if ray_options:
        raise TypeError(f"options {sorted(ray_options)} need workers=N (Ray evaluation)")
    return VectorizedEvaluator(f) if vectorized else SerialEvaluator(f)


__all__ = ["Evaluator", "SerialEvaluator", "VectorizedEvaluator", "make_evaluator"]
