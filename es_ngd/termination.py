"""Termination criteria, pycma's shape: :meth:`Termination.check` returns the reasons that hold.

The criteria keep a short history of per-generation fitness statistics; everything else they need
(σ, the factor's variances and condition number) is read from the strategy's state when checked.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TerminationOptions:
    ftarget: float = -math.inf  #: stop when the best f is at or below this
    maxfevals: float = math.inf  #: stop after this many evaluations
    maxiter: float = math.inf  #: stop after this many generations
    tolfun: float = 1e-11  #: stop when recent best values and the current f span less than this
    tolx: float = 1e-11  #: stop when σ · (largest standard deviation) is below this
    max_condition: float = 1e14  #: stop when the condition number of S exceeds this
    tolstagnation: int | None = None  #: window (generations); default ``100 + 100 p^{3/2} / n``
    tolflatfitness: int = 1  #: generations of all-equal fitness tolerated before stopping
    tolnonfinite: int = 3  #: stop after this many generations in a row with no finite fitness value


class Termination:
    """Tracks the fitness history and evaluates the criteria of :class:`TerminationOptions`."""

    def __init__(self, options: TerminationOptions, dim: int, popsize: int) -> None:
        self.options = options
        self.tolfun_window = 10 + math.ceil(30 * dim / popsize)
        self.stagnation_window = (options.tolstagnation if options.tolstagnation is not None
                                  else int(100 + 100 * dim**1.5 / popsize))
        self.recent_best: deque[float] = deque(maxlen=self.tolfun_window)
        self.best_history: deque[float] = deque(maxlen=self.stagnation_window)
        self.median_history: deque[float] = deque(maxlen=self.stagnation_window)
        self.flat_generations = 0
        self.nonfinite_generations = 0  #: generations in a row with no finite fitness value
        self.last_worst = math.inf  #: worst finite value of the newest generation

    def record(self, f: np.ndarray) -> None:
        """Record one generation's fitness values (non-finite ones already ranked last)."""
        finite = np.sort(f[np.isfinite(f)])  # sorting 10–1000 values costs less than np.median's checks
        m = finite.size
        if m == 0:
            # Nothing to rank: the step was zero and the next generation samples the same distribution,
            # so such a run would go on for ever. It counts as a generation without progress for the
            # stagnation window, and `tolnonfinite` of them in a row stop the run.
            self.nonfinite_generations += 1
            self.best_history.append(math.inf)
            self.median_history.append(math.inf)
            return
        self.nonfinite_generations = 0
        best, worst = float(finite[0]), float(finite[-1])
        self.recent_best.append(best)
        self.best_history.append(best)
        self.median_history.append(0.5 * (float(finite[(m - 1) // 2]) + float(finite[m // 2])))
        self.flat_generations = self.flat_generations + 1 if (worst == best and m == f.size) else 0
        self.last_worst = worst

    def fitness_range(self) -> float:
        """Span of the recent best values and the newest generation (pycma's tolfun and tolfunhist).

        Computed when checked, not in :meth:`record`: the window holds ``10 + 30 p/n`` values.
        """
        if not self.recent_best:
            return math.inf
        return max(self.last_worst, max(self.recent_best)) - min(self.recent_best)

    def check(self, *, fbest: float, evaluations: int, iterations: int, sigma: float,
              max_std: float, condition: float, numerical_error: str | None) -> dict[str, Any]:
        opts, stop = self.options, {}
        if fbest <= opts.ftarget:
            stop["ftarget"] = opts.ftarget
        if evaluations >= opts.maxfevals:
            stop["maxfevals"] = opts.maxfevals
        if iterations >= opts.maxiter:
            stop["maxiter"] = opts.maxiter
        if len(self.recent_best) == self.tolfun_window and self.fitness_range() < opts.tolfun:
            stop["tolfun"] = opts.tolfun
        if self.flat_generations > opts.tolflatfitness:
            stop["tolflatfitness"] = opts.tolflatfitness
        if sigma * max_std < opts.tolx:
            stop["tolx"] = opts.tolx
        if condition > opts.max_condition:
            stop["condition"] = opts.max_condition
        if self._stagnated():
            stop["tolstagnation"] = self.stagnation_window
        if self.nonfinite_generations >= opts.tolnonfinite:
            stop["nonfinite"] = (f"the last {self.nonfinite_generations} generations had no finite fitness value "
                                 "(every f was NaN or inf): check the objective and sigma0")
        if numerical_error:
            stop["numerical"] = numerical_error
        return stop

    def _stagnated(self) -> bool:
        """The median of the newest fifth of the window is no better than that of the oldest fifth,
        for both the best and the median fitness (pycma's criterion)."""
        n = len(self.best_history)
        if n < self.stagnation_window or n < 10:
            return False
        fifth = max(1, n // 5)

        def old_new(history: deque[float]) -> tuple[float, float]:
            return (float(np.median(list(islice(history, 0, fifth)))),
                    float(np.median(list(islice(history, n - fifth, n)))))

        best_old, best_new = old_new(self.best_history)
        med_old, med_new = old_new(self.median_history)
        return best_new >= best_old and med_new >= med_old

    def state_dict(self) -> dict[str, Any]:
        return {"recent_best": list(self.recent_best), "best_history": list(self.best_history),
                "median_history": list(self.median_history), "flat_generations": self.flat_generations,
                "last_worst": self.last_worst, "nonfinite_generations": self.nonfinite_generations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; ``ValueError`` (changing nothing) if a value is malformed."""
        histories = {name: _real_list(state, name) for name in ("recent_best", "best_history", "median_history")}
        counters = {name: state.get(name, 0) for name in ("flat_generations", "nonfinite_generations")}
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counters.values()):
            raise ValueError(f"termination counters must be non-negative integers, got {counters}")
        if "last_worst" in state:
            last_worst = _real(state["last_worst"], "last_worst")
        else:  # written by es_ngd 0.1.0, which kept the range itself: recover an equivalent worst value
            last_worst = _real(state["last_range"], "last_range") + min(histories["recent_best"], default=0.0)
        self.recent_best = deque(histories["recent_best"], maxlen=self.tolfun_window)
        self.best_history = deque(histories["best_history"], maxlen=self.stagnation_window)
        self.median_history = deque(histories["median_history"], maxlen=self.stagnation_window)
        self.flat_generations = counters["flat_generations"]
        self.nonfinite_generations = counters["nonfinite_generations"]
        self.last_worst = last_worst


def _real(value: Any, name: str) -> float:
    """A recorded fitness statistic: a real number, possibly inf, never NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"termination entry {name} must be a number, got {value!r}")
    return float(value)


def _real_list(state: dict[str, Any], name: str) -> list[float]:
    values = state[name]
    if not isinstance(values, list):
        raise ValueError(f"termination entry {name} must be a list of numbers, got {type(values).__name__}")
    return [_real(value, name) for value in values]
