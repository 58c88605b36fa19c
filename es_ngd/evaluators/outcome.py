"""Per-candidate information back from an objective, and per-generation context out to it.

An objective may return :class:`Outcome` instead of a bare number, to send back whatever else its
evaluation produced (episode steps, observation statistics, a diagnostic); evaluators return those
``info`` objects next to the fitness values, one per candidate, in candidate order
(``evaluate_with_info``). In the other direction, ``evaluate(population, context=c)`` passes ``c`` to
every call of the objective as the keyword argument ``context`` (on every Ray worker: it travels once
per generation with the population), for state that must be the same for every candidate of a
generation and may change between generations (a frozen observation normaliser). Evaluators treat
both as opaque objects: they know nothing of what they mean, nor of the strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from es_ngd.fitness import population_fitness, scalar_fitness


@dataclass(frozen=True)
class Outcome:
    """What an objective may return in place of its fitness.

    For one candidate ``fitness`` is a real number; with ``vectorized=True`` it is ``m`` values and
    ``info`` a sequence of ``m`` objects, one per row.
    """

    fitness: Any
    info: Any = None


def scalar_outcome(value: Any, index: int | None = None) -> tuple[float, Any]:
    """``(fitness, info)`` of what an objective returned for one candidate (``info`` None for a bare number)."""
    if isinstance(value, Outcome):
        return scalar_fitness(value.fitness, index), value.info
    return scalar_fitness(value, index), None


def population_outcome(value: Any, n: int) -> tuple[Any, list[Any]]:
    """``(fitness values, infos)`` of what a vectorised objective returned for ``n`` rows."""
    if not isinstance(value, Outcome):
        return population_fitness(value, n), [None] * n
    info = value.info
    if info is None:
        info = [None] * n
    elif not isinstance(info, Sequence) or len(info) != n:
        length = f" of length {len(info)}" if isinstance(info, Sequence) else ""
        raise TypeError(f"a vectorised objective's Outcome.info must be a sequence of {n} objects (one per row), "
                        f"got {type(info).__name__}{length}")
    return population_fitness(value.fitness, n), list(info)


def context_call(f: Callable[..., Any], context: Any) -> Callable[..., Any]:
    """``f`` itself, or ``f`` with ``context=context`` added to every call when a context is given."""
    if context is None:
        return f
    return lambda *args: f(*args, context=context)


__all__ = ["Outcome", "context_call", "population_outcome", "scalar_outcome"]
