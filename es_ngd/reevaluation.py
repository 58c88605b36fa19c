"""Noisy objectives: evaluate each candidate ``k`` times and average.

Averaging ``k`` independent evaluations divides the variance of the fitness noise by ``k`` (its
standard deviation by ``√k``) at ``k`` times the cost. Rank-based shaping only needs the *order* of
the population to be right, so this pays off when the noise is comparable to the fitness differences
within a population, late in a run; early on, a larger population is usually the cheaper cure.

:func:`es_ngd.optimize` counts evaluations honestly: with ``reevaluations=k`` its ``maxfevals`` budget
and the ``evaluations`` it reports are calls of ``f``, i.e. ``k`` per candidate.
"""

from __future__ import annotations

import numpy as np

from es_ngd.evaluators import Evaluator
from es_ngd.population import Population


class Reevaluated:
    """An evaluator that asks ``inner`` for every population ``k`` times and returns the means."""

    def __init__(self, inner: Evaluator, k: int) -> None:
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"reevaluations must be a positive integer, got {k!r}")
        self.inner, self.k = inner, int(k)

    def evaluate(self, population: Population) -> np.ndarray:
        # a NaN or inf in any repeat makes the mean non-finite: the strategy then ranks it last
        return np.mean([self.inner.evaluate(population) for _ in range(self.k)], axis=0)

    def close(self) -> None:
        self.inner.close()


__all__ = ["Reevaluated"]
