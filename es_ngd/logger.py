"""A per-generation CSV log of a run, to read with any tool or draw with ``es-ngd plot LOGDIR``.

``Logger(directory)`` writes ``directory/log.csv``, one row per generation::

    run, iteration, evaluations, elapsed_s, f_best_ever, f_best, f_median, sigma, condition,
    step_bound_hits, popsize[, mean_0, mean_1, ...]

``f_best``/``f_median`` are the generation's best and median (finite) fitness, ``f_best_ever`` the
best so far in this run, ``condition`` the condition number of the precision ``S`` as the group reports it (an
estimate for the block groups), ``run`` the restart index. Each row is flushed to disk when written,
so a log can be plotted while the run goes on and survives a crash. ``directory/meta.json`` records
the structure, dimension and seed for plot titles.

Use it as ``optimize(..., logger=Logger("logs/run1"))``, or call it after each ``tell``::

    logger = Logger("logs/run1")
    while not es.stop():
        X = es.ask()
        F = [f(x) for x in X]
        es.tell(X, F)
        logger(es, F)

A new logger starts a fresh file when its first row is the run's first generation; when it joins a
resumed run (a checkpoint), it keeps the rows logged before the resume point and appends.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from es_ngd.strategy import NGDES

LOG_FILE = "log.csv"
META_FILE = "meta.json"
COLUMNS = ("run", "iteration", "evaluations", "elapsed_s", "f_best_ever", "f_best", "f_median", "sigma",
           "condition", "step_bound_hits", "popsize")


class Logger:
    """Writes one CSV row per generation to ``directory/log.csv`` (see the module docstring).

    ``mean_coordinates`` adds the first that many coordinates of the mean as columns.
    """

    def __init__(self, directory: str | os.PathLike[str], *, mean_coordinates: int = 0) -> None:
        if isinstance(mean_coordinates, bool) or int(mean_coordinates) != mean_coordinates or mean_coordinates < 0:
            raise ValueError(f"mean_coordinates must be a non-negative integer, got {mean_coordinates!r}")
        self.directory = Path(directory)
        self.path = self.directory / LOG_FILE
        self.mean_coordinates = int(mean_coordinates)
        self._start = time.monotonic()
        self._columns: list[str] | None = None  # fixed by the first row

    def __call__(self, es: NGDES, fitness: Any = None, *, evaluations: int | None = None, run: int = 0) -> None:
        """Log the generation just told to ``es``.

        ``fitness`` is that generation's values (without it, the strategy's termination history
        supplies best and median); ``evaluations`` overrides the strategy's count (calls of ``f``
        across restarts and re-evaluations, as :func:`es_ngd.optimize` passes it).
        """
        s = es.state
        best, median = _generation_stats(es, fitness)
        row: dict[str, Any] = {
            "run": run, "iteration": s.iterations, "evaluations": s.evaluations if evaluations is None else evaluations,
            "elapsed_s": round(time.monotonic() - self._start, 6), "f_best_ever": s.fbest, "f_best": best,
            "f_median": median, "sigma": s.sigma, "condition": es.group.condition_number(s.factor),
            "step_bound_hits": s.step_bound_hits, "popsize": es.popsize,
        }
        mean = es.backend.to_numpy(s.mean)
        for i in range(min(self.mean_coordinates, es.dim)):
            row[f"mean_{i}"] = float(mean[i])
        if self._columns is None:
            self._columns = list(row)
            self._start_file(es, row)
        with open(self.path, "a", newline="") as file:
            csv.DictWriter(file, self._columns).writerow({k: _format(row.get(k)) for k in self._columns})

    def _start_file(self, es: NGDES, row: dict[str, Any]) -> None:
        """Fresh file for a fresh run; for a resumed one keep the rows logged before this one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        kept: list[dict[str, str]] = []
        resumed = not (row["run"] == 0 and row["iteration"] == 1)
        if resumed and self.path.exists():
            with open(self.path, newline="") as file:
                kept = [r for r in csv.DictReader(file) if float(r.get("evaluations") or math.inf) < row["evaluations"]]
        with open(self.path, "w", newline="") as file:
            writer = csv.DictWriter(file, self._columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        meta = {"structure": es.group.structure, "dim": es.dim, "popsize": es.popsize, "seed": es.seed,
                "backend": es.backend.describe(), "columns": self._columns}
        (self.directory / META_FILE).write_text(json.dumps(meta, indent=1))


def _generation_stats(es: NGDES, fitness: Any) -> tuple[float, float]:
    if fitness is not None:
        values = np.asarray(fitness.detach().cpu().numpy() if hasattr(fitness, "detach") else fitness, dtype=float)
        finite = values[np.isfinite(values)]
        return (float(finite.min()), float(np.median(finite))) if finite.size else (math.nan, math.nan)
    history = es.termination
    if not history.best_history:
        return math.nan, math.nan
    return history.best_history[-1], history.median_history[-1]


def _format(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def read_log(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The columns of ``directory/log.csv`` as float arrays (empty cells are NaN)."""
    path = Path(directory) / LOG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {LOG_FILE} in {directory} (write one with es_ngd.Logger)")
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    columns = list(rows[0]) if rows else list(COLUMNS)
    return {c: np.array([float(r[c]) if r.get(c) not in (None, "") else math.nan for r in rows]) for c in columns}


__all__ = ["COLUMNS", "Logger", "read_log"]
