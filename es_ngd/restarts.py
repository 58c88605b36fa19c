"""IPOP and BIPOP restarts (Auger & Hansen 2005; Hansen 2009), around any structure.

A run ends when a termination criterion holds. Unless that was the target (``ftarget``), the
overall evaluation budget (``maxfevals``) or a callback, the search restarts with a fresh seed:

- **IPOP** (``restarts=N``): each restart multiplies the population size by ``incpopsize`` (2).
  Large populations smooth out multi-modal landscapes such as Rastrigin.
- **BIPOP** (``restarts=N, bipop=True``): alternates that *large* regime with *small*-population
  runs, ``λ = ⌊λ₀ · (λ_large/λ₀)^{U²}⌋`` (``λ_large`` the last large run's size) and
  ``σ = σ₀ · 10^{−2U}`` for ``U ~ U(0, 1)``, each capped at half the large regime's evaluations so
  far; a small run happens whenever the small regime has used fewer evaluations than the large one
  (the first, default-sized run counts as small). These are pycma's rules.

This is pycma's ``cma.fmin(..., restarts=9, bipop=True, incpopsize=2)``, and :func:`es_ngd.optimize`
takes the same keywords. ``restarts`` counts runs after the first (small BIPOP runs included).
Run 0 uses the user's seed, so ``restarts=0`` is exactly a plain run; run ``i`` uses
:func:`restart_seed`, derived from the user's seed, and so do the BIPOP draws: the whole sequence
is reproducible from one seed. Each restart starts from ``x0``, or from ``x0(rng)`` when ``x0`` is a
callable (pycma accepts a string expression for the same purpose), ``rng`` being a
``numpy.random.Generator`` seeded for that run.

Every finished run is reported: as a :class:`RunRecord` in ``result.extra["runs"]``, on the
``logging`` logger ``"es_ngd.restarts"`` (level INFO), and to ``on_restart(record)`` if given
(``on_restart=print`` prints one line per run).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.strategy import Result

log = logging.getLogger("es_ngd.restarts")

#: stop reasons that end the whole search rather than one run
FINAL_REASONS = frozenset({"ftarget", "maxfevals", "callback"})
_RESTART_TAG = 0x52455354  # "REST": keeps restart draws apart from the sampling noise's keys


@dataclass(frozen=True)
class RunSpec:
    """How to start one run."""

    run: int  #: 0 for the first run
    regime: str  #: "first", "large" or "small"
    x0: Any
    sigma0: float
    popsize: int | None  #: None: the strategy's default
    seed: int
    maxfevals: float  #: calls of f this run may use (what is left of the overall budget)
    maxiter: float


@dataclass(frozen=True)
class RunRecord:
    """What one run did (``evaluations`` are calls of f)."""

    run: int
    regime: str
    popsize: int
    sigma0: float
    seed: int
    evaluations: int
    iterations: int
    fbest: float
    stop: dict[str, Any]

    def __str__(self) -> str:
        return (f"run {self.run} ({self.regime}): popsize {self.popsize}, sigma0 {self.sigma0:.3g}, "
                f"{self.evaluations} evaluations, fbest {self.fbest:.6g}, stop: {', '.join(self.stop)}")


@dataclass(frozen=True)
class RunOutcome:
    """What a run reports back to the restart loop."""

    result: Result  #: evaluations counted as calls of f
    popsize: int
    interrupted: bool  #: a callback asked to stop everything


def restart_seed(seed: int, run: int) -> int:
    """The seed of run ``run`` (run 0 keeps ``seed``; later ones are derived, independent streams)."""
    if run == 0:
        return seed
    return int(np.random.SeedSequence([seed, run, 0, _RESTART_TAG]).generate_state(1)[0])


def run_rng(seed: int, run: int, purpose: int) -> np.random.Generator:
    """A generator for one kind of random choice of run ``run`` (1: its start point, 2: BIPOP's draw)."""
    return np.random.default_rng([seed, run, purpose, _RESTART_TAG])


def start_point(x0: Any, seed: int, run: int) -> Any:
    """``x0``, or ``x0(rng)`` for a callable ``x0``."""
    return x0(run_rng(seed, run, 1)) if callable(x0) else x0


def run_with_restarts(run_one: Callable[[RunSpec, int], RunOutcome], *, x0: Any, sigma0: float,
                      popsize: int | None, seed: int, restarts: int, bipop: bool = False, incpopsize: float = 2.0,
                      maxfevals: float = math.inf, maxiter: float = math.inf,
                      on_restart: Callable[[RunRecord], Any] | None = None) -> Result:
    """Call ``run_one(spec, evaluations_so_far)`` until a final stop reason or ``restarts`` runs after
    the first; returns the best result over all runs, with the :class:`RunRecord` list in
    ``extra["runs"]`` (with ``restarts=0``: the one run's result as it is)."""
    if isinstance(restarts, bool) or int(restarts) != restarts or restarts < 0:
        raise ValueError(f"restarts must be a non-negative integer, got {restarts!r}")
    if not (math.isfinite(incpopsize) and incpopsize >= 1):
        raise ValueError(f"incpopsize must be a finite number >= 1, got {incpopsize!r}")
    records: list[RunRecord] = []
    results: list[Result] = []
    used = 0  # calls of f so far
    budget = {"small": 0, "large": 0}  # BIPOP's bookkeeping, per regime
    small_runs = 0
    popsize0 = popsize
    for run in range(int(restarts) + 1):
        spec = RunSpec(run=run, regime="first", x0=start_point(x0, seed, run), sigma0=sigma0, popsize=popsize0,
                       seed=restart_seed(seed, run), maxfevals=maxfevals - used, maxiter=maxiter)
        if run > 0:
            assert popsize0 is not None  # set from the first run
            if bipop and budget["small"] < budget["large"]:
                small_runs += 1
                u = run_rng(seed, run, 2).uniform()
                size = max(2, int(popsize0 * (incpopsize ** (run - small_runs)) ** (u**2)))
                spec = dataclasses.replace(spec, regime="small", popsize=size, sigma0=sigma0 * 0.01**u,
                                           maxiter=min(maxiter, 0.5 * budget["large"] / size))
            else:
                spec = dataclasses.replace(spec, regime="large",
                                           popsize=int(popsize0 * incpopsize ** (run - small_runs)))
        outcome = run_one(spec, used)
        result = outcome.result
        popsize0 = outcome.popsize if run == 0 else popsize0
        used += result.evaluations
        budget["large" if spec.regime == "large" else "small"] += result.evaluations
        record = RunRecord(run=run, regime=spec.regime, popsize=outcome.popsize, sigma0=spec.sigma0,
                           seed=spec.seed, evaluations=result.evaluations, iterations=result.iterations,
                           fbest=result.fbest, stop=dict(result.stop))
        records.append(record)
        results.append(result)
        log.info("%s", record)
        if on_restart is not None:
            on_restart(record)
        if outcome.interrupted or FINAL_REASONS & set(result.stop) or used >= maxfevals:
            break
    return _combine(results, records) if restarts else results[0]


def _combine(results: list[Result], records: list[RunRecord]) -> Result:
    """The best run's xbest/fbest, the last run's distribution and stop, counters summed."""
    best_run = min(range(len(results)), key=lambda i: results[i].fbest)
    best, last = results[best_run], results[-1]
    return dataclasses.replace(
        last, xbest=best.xbest, fbest=best.fbest, evaluations=sum(r.evaluations for r in results),
        evals_best=sum(r.evaluations for r in results[:best_run]) + best.evals_best,
        iterations=sum(r.iterations for r in results), step_bound_hits=sum(r.step_bound_hits for r in results),
        extra={**last.extra, "runs": records})


__all__ = ["FINAL_REASONS", "RunOutcome", "RunRecord", "RunSpec", "restart_seed", "run_with_restarts", "start_point"]
