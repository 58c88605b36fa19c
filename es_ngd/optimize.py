"""``optimize(f, x0, sigma0)``: the whole ask/evaluate/tell loop in one call."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from es_ngd.bounds import Bounds, make_bounds
from es_ngd.checkpoint import resume
from es_ngd.evaluators import EVALUATOR_OPTIONS, Evaluator, make_evaluator
from es_ngd.logger import Logger
from es_ngd.reevaluation import Reevaluated
from es_ngd.restarts import RunOutcome, RunRecord, RunSpec, run_with_restarts, start_point
from es_ngd.strategy import NGDES, Result, make_options


def optimize(f: Callable[..., Any], x0: Any, sigma0: float, *, structure: Any = "diag",
             popsize: int | None = None, seed: int | None = None, backend: Any = "numpy",
             vectorized: bool = False, workers: int | None = None, evaluator: Evaluator | None = None,
             callback: Callable[[NGDES], Any] | None = None,
             bounds: Bounds | tuple[Any, Any] | None = None, bound_handling: str = "transform",
             reevaluations: int = 1, restarts: int = 0, bipop: bool = False, incpopsize: float = 2.0,
             on_restart: Callable[[RunRecord], Any] | None = None, logger: Logger | None = None,
             checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 10,
             **options: Any) -> Result:
    """Minimise ``f`` from ``x0`` with initial step size ``sigma0``; returns a :class:`Result`.

    ``f`` takes one candidate (a 1-D array) and returns a number, or, with ``vectorized=True``, takes
    the ``(n, p)`` population and returns ``n`` numbers. ``workers=N`` evaluates in parallel on a
    Ray pool; ``evaluator=`` takes any :class:`~es_ngd.evaluators.Evaluator`. ``callback(es)`` runs
    after every generation; returning ``True`` stops the run (reason ``"callback"``). Every other
    keyword is an option of :class:`~es_ngd.strategy.NGDES`.

    Constraints and noise: ``bounds=(lower, upper)`` (or a :class:`~es_ngd.bounds.Bounds`) keeps every
    point ``f`` sees in the box, by ``bound_handling="transform"`` or ``"penalty"``; ``xbest`` and
    ``mean`` are reported in the box. ``reevaluations=k`` averages ``k`` calls of ``f`` per candidate;
    ``maxfevals`` and ``evaluations`` then count calls of ``f``.

    With ``workers=N``, the :class:`~es_ngd.evaluators.ray.RayEvaluator` options (``timeout``,
    ``on_error``, ``init_hook``, ``num_cpus``, ...: :data:`~es_ngd.evaluators.EVALUATOR_OPTIONS`) are
    keywords here too. A local Ray that this call starts stays up for the next call to reuse (Ray shuts
    it down at exit); one that was already running is used as it is.

    Restarts, with pycma's keywords (:mod:`es_ngd.restarts`): ``restarts=N`` restarts up to ``N``
    times with the population multiplied by ``incpopsize`` (IPOP), ``bipop=True`` interleaves small
    populations (BIPOP). ``maxfevals`` is the budget of all runs together, ``maxiter`` that of each.
    ``x0`` may be a callable ``x0(rng)`` that draws each run's start. ``on_restart(record)`` sees each
    finished run; ``result.extra["runs"]`` lists them.

    ``logger=Logger(directory)`` writes a CSV row per generation (:mod:`es_ngd.logger`).
    ``checkpoint=path`` resumes from ``path`` when it exists (then ``x0`` and ``sigma0`` are unused)
    and saves there every ``checkpoint_every`` generations and at the end (:mod:`es_ngd.checkpoint`).
    """
    if evaluator is not None and (vectorized or workers is not None or bounds is not None):
        raise TypeError("pass either evaluator= or f (with vectorized=/workers=/bounds=), not both")
    _check_count("reevaluations", reevaluations, minimum=1)
    _check_count("checkpoint_every", checkpoint_every, minimum=1)
    if checkpoint is not None and (restarts or bipop):
        raise ValueError("checkpoint= does not resume restarts yet; use one or the other")
    evaluator_options = {name: options.pop(name) for name in EVALUATOR_OPTIONS & set(options)}
    if evaluator_options and workers is None:
        raise TypeError(f"option(s) {sorted(evaluator_options)} are RayEvaluator options: they need workers=N")
    maxfevals = options.pop("maxfevals", math.inf)
    maxiter = options.pop("maxiter", math.inf)
    make_options(maxfevals=maxfevals, maxiter=maxiter, **options)  # fail on a typo before starting workers
    given_seed = seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    box = None if bounds is None else make_bounds(bounds, np.size(_host(start_point(x0, seed, 0))), bound_handling)
    inner = evaluator if evaluator is not None else make_evaluator(
        f if box is None else box.wrap(f, vectorized=vectorized), vectorized=vectorized, workers=workers,
        **({"keep_ray": True, **evaluator_options} if workers is not None else {}))
    evaluate = inner if reevaluations == 1 else Reevaluated(inner, reevaluations)

    def run_one(spec: RunSpec, evaluations_before: int) -> RunOutcome:
        candidates_budget = spec.maxfevals / reevaluations  # the strategy counts candidates, the user calls of f
        es = NGDES(spec.x0 if box is None else box.to_internal(_host(spec.x0)), spec.sigma0, structure=structure,
                   popsize=spec.popsize, seed=spec.seed, backend=backend, maxiter=spec.maxiter,
                   maxfevals=math.ceil(candidates_budget) if math.isfinite(candidates_budget) else math.inf,
                   **options)
        if checkpoint is not None:
            resume(es, checkpoint, seed=given_seed, popsize=popsize)
        interrupted = False
        while not es.stop():
            population = es.ask_population()
            fitness = evaluate.evaluate(population)
            es.tell(population.candidates(), fitness)
            if logger is not None:
                logger(es, fitness, evaluations=evaluations_before + reevaluations * es.state.evaluations,
                       run=spec.run)
            if checkpoint is not None and es.state.iterations % checkpoint_every == 0:
                es.save(checkpoint)
            if callback is not None and callback(es) is True:
                interrupted = True
                break
        if checkpoint is not None:
            es.save(checkpoint)
        return RunOutcome(_report(es.result, box, reevaluations, interrupted, maxfevals), es.popsize, interrupted)

    try:
        return run_with_restarts(run_one, x0=x0, sigma0=sigma0, popsize=popsize, seed=seed, restarts=restarts,
                                 bipop=bipop, incpopsize=incpopsize, maxfevals=maxfevals, maxiter=maxiter,
                                 on_restart=on_restart)
    finally:
        if evaluator is None:
            inner.close()


def _report(result: Result, box: Bounds | None, reevaluations: int, interrupted: bool, maxfevals: float) -> Result:
    """The strategy's result in the user's terms: points in the box, evaluations as calls of ``f``."""
    stop = dict(result.stop)
    if interrupted:
        stop["callback"] = True
    if "maxfevals" in stop:
        stop["maxfevals"] = maxfevals  # the overall budget, not the per-run share in candidates
    if box is not None:
        result = dataclasses.replace(result, mean=box.to_feasible(result.mean),
                                     xbest=None if result.xbest is None else box.to_feasible(result.xbest))
    return dataclasses.replace(result, evaluations=reevaluations * result.evaluations,
                               evals_best=reevaluations * result.evals_best, stop=stop)


def _host(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
