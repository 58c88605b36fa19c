"""``optimize(f, x0, sigma0)``: the whole ask/evaluate/tell loop in one call."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from es_ngd.evaluators import Evaluator, make_evaluator
from es_ngd.strategy import NGDES, Result


def optimize(f: Callable[..., Any], x0: Any, sigma0: float, *, structure: Any = "diag",
             popsize: int | None = None, seed: int | None = None, backend: Any = "numpy",
             vectorized: bool = False, workers: int | None = None, evaluator: Evaluator | None = None,
             callback: Callable[[NGDES], Any] | None = None, **options: Any) -> Result:
    """Minimise ``f`` from ``x0`` with initial step size ``sigma0``; returns a :class:`Result`.

    ``f`` takes one candidate (a 1-D array) and returns a number, or, with ``vectorized=True``, takes
    the ``(n, p)`` population and returns ``n`` numbers. ``workers=N`` evaluates in parallel on a
    Ray pool; ``evaluator=`` takes any :class:`~es_ngd.evaluators.Evaluator`. ``callback(es)`` runs
    after every generation; returning ``True`` stops the run (reason ``"callback"``). Every other
    keyword is an option of :class:`~es_ngd.strategy.NGDES`.
    """
    es = NGDES(x0, sigma0, structure=structure, popsize=popsize, seed=seed, backend=backend, **options)
    owned = evaluator is None
    if owned:
        evaluator = make_evaluator(f, vectorized=vectorized, workers=workers)
    elif vectorized or workers is not None:
        raise TypeError("pass either evaluator= or vectorized=/workers=, not both")
    stopped_by_callback = False
    try:
        while not es.stop():
            population = es.ask_population()
            es.tell(population.candidates(), evaluator.evaluate(population))
            if callback is not None and callback(es) is True:
                stopped_by_callback = True
                break
    finally:
        if owned:
            evaluator.close()
    result = es.result
    if stopped_by_callback:
        result = dataclasses.replace(result, stop={**result.stop, "callback": True})
    return result
