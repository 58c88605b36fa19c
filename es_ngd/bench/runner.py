"""Run one solver on one problem with a counted objective, and many such runs in parallel.

Every run follows the same loop, whatever the solver::

    while the next generation fits in the budget and the solver does not stop:
        X = solver.ask(); f = objective(X); solver.tell(X, f)
        stop if the best f − f_opt so far is <= target

The objective is wrapped in a counter, so "evaluations" in the report is the number of points that
were really evaluated. A generation that would overrun the budget is not started, so no run ever
uses more evaluations than its budget, and no solver gets more than another.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from es_ngd.bench.functions import Problem, make_problem
from es_ngd.bench.solvers import Solver, make_solver

#: history points per decade of evaluations (enough for smooth plots, small enough for JSON)
HISTORY_POINTS_PER_DECADE = 20


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; picklable, so it can be sent to a worker process."""

    solver: str
    suite: str  # "builtin", "structured" or "bbob"
    function: str  # a built-in or structured problem name, or a bbob function id as a string
    dim: int
    instance: int  # which seeded problem instance (for built-in functions: the seed)
    seed: int  # the solver's random seed
    budget: int  # maximal number of evaluations
    target: float  # success: f − f_opt <= target
    sigma0: float
    max_seconds: float | None = None  # wall-time limit: no generation starts after it (None: evaluations only)


@dataclass
class RunRecord:
    """What one run produced (plain data: it goes into the JSON file as it is)."""

    spec: RunSpec
    function_label: str
    evaluations: int  # points the counted objective evaluated
    iterations: int
    success: bool
    evaluations_to_target: int | None  # evaluations when the target was first reached
    best_precision: float  # best f − f_opt seen
    wall_seconds: float
    stop_reasons: list[str]
    history: list[tuple[int, float]] = field(default_factory=list)  # (evaluations, best f − f_opt)
    seconds_to_target: float | None = None  # wall time when the target was first reached
    history_seconds: list[float] = field(default_factory=list)  # wall time at each point of `history`
    kind: str = "generic"  # the problem's kind: "generic", "structured" or "bbob"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [list(point) for point in self.history]
        return data


class CountedObjective:
    """Wraps a vectorised objective: counts every evaluated point and tracks the best value."""

    def __init__(self, evaluate: Callable[[np.ndarray], np.ndarray]) -> None:
        self.evaluate = evaluate
        self.calls = 0
        self.best = math.inf

    def __call__(self, X: np.ndarray) -> np.ndarray:
        values = np.asarray(self.evaluate(X), dtype=float).reshape(-1)
        self.calls += len(values)
        finite = values[np.isfinite(values)]
        if finite.size:
            self.best = min(self.best, float(finite.min()))
        return values


def build_problem(spec: RunSpec) -> Problem:
    """The problem a spec names (the same in every process)."""
    if spec.suite == "bbob":
        from es_ngd.bench.bbob import make_bbob_problem

        return make_bbob_problem(int(spec.function), spec.dim, spec.instance, x0_seed=spec.seed)
    if spec.suite == "structured":
        from es_ngd.bench.structured import make_structured_problem

        return make_structured_problem(spec.function, spec.dim, spec.instance)
    return make_problem(spec.function, spec.dim, spec.instance)


def run_one(spec: RunSpec, problem: Problem | None = None) -> RunRecord:
    """Run ``spec.solver`` on the problem of ``spec`` (or on ``problem``, if given) until a stop.

    A solver that raises does not end the benchmark: the run is recorded as unsuccessful, with the
    error as its stop reason (the report counts such runs and says so).
    """
    problem = build_problem(spec) if problem is None else problem
    objective = CountedObjective(problem.evaluate)
    progress = _Progress(spec.target, problem.fopt)
    started = time.perf_counter()
    try:
        # built before the clock starts: the first run in a process would otherwise pay for `import cma`
        solver = make_solver(spec.solver, problem.x0, spec.sigma0, spec.seed, maxfevals=spec.budget,
                             ftarget=problem.fopt + spec.target, shape=problem.shape)
        started = progress.started = time.perf_counter()
        stop_reasons = _minimise(solver, spec.budget, objective, progress, spec.max_seconds)
    except Exception as error:  # recorded, not swallowed: it becomes the stop reason
        stop_reasons = [f"error: {type(error).__name__}: {error}"]
    wall = time.perf_counter() - started
    final_precision = objective.best - problem.fopt
    if objective.calls and (not progress.history or progress.history[-1][0] != objective.calls):
        progress.history.append((objective.calls, final_precision))
        progress.history_seconds.append(wall)
    return RunRecord(spec=spec, function_label=problem.name, evaluations=objective.calls,
                     iterations=progress.iterations, success=progress.reached_at is not None,
                     evaluations_to_target=progress.reached_at, best_precision=final_precision,
                     wall_seconds=wall, stop_reasons=stop_reasons, history=progress.history,
                     seconds_to_target=progress.reached_after, history_seconds=progress.history_seconds,
                     kind=problem.kind)


class _Progress:
    """The per-generation bookkeeping of one run: iterations, history points, first hit of the target."""

    def __init__(self, target: float, fopt: float) -> None:
        self.target, self.fopt = target, fopt
        self.iterations = 0
        self.reached_at: int | None = None
        self.reached_after: float | None = None  # seconds
        self.history: list[tuple[int, float]] = []
        self.history_seconds: list[float] = []
        self.started = time.perf_counter()  # reset by run_one once the solver is built
        self._next_checkpoint = 1.0

    def record(self, objective: CountedObjective) -> bool:
        """Note one finished generation; True once the target is reached."""
        self.iterations += 1
        precision = objective.best - self.fopt
        seconds = time.perf_counter() - self.started
        if objective.calls >= self._next_checkpoint:  # log-spaced points: a few hundred per run at most
            self.history.append((objective.calls, precision))
            self.history_seconds.append(seconds)
            while self._next_checkpoint <= objective.calls:
                self._next_checkpoint *= 10.0 ** (1.0 / HISTORY_POINTS_PER_DECADE)
        if precision <= self.target:
            self.reached_at, self.reached_after = objective.calls, seconds
            return True
        return False


def _minimise(solver: Solver, budget: int, objective: CountedObjective, progress: _Progress,
              max_seconds: float | None = None) -> list[str]:
    """The ask/evaluate/tell loop shared by all solvers; returns why it stopped.

    ``max_seconds`` bounds the wall time the same way as ``budget`` bounds evaluations: a solver whose
    generations cost O(p²) (CMA-ES at p = 1000) is stopped after as many seconds as any other one.
    """
    while True:
        if objective.calls + solver.popsize > budget:
            return ["budget"]
        if max_seconds is not None and time.perf_counter() - progress.started >= max_seconds:
            return ["time"]
        own_reasons = solver.stop()
        if own_reasons:
            return sorted(own_reasons)
        X = solver.ask()
        solver.tell(X, objective(X))
        if progress.record(objective):
            return ["target"]


#: BLAS/OpenMP thread counts pinned to 1 in worker processes: with --jobs N runs on N cores, each
#: run must use one core, or the runs fight over cores and the wall times mean nothing
_SINGLE_THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (inherited by processes started in it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_all(specs: Sequence[RunSpec], jobs: int = 1,
            on_done: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
    """Every run of ``specs`` (in that order), ``jobs`` at a time; ``on_done(record)`` after each one.

    ``jobs == 1`` runs in this process; more use a pool of fresh ("spawn") processes, so workers
    inherit no threads or state from the caller.
    """
    if jobs <= 1 or len(specs) <= 1:
        records = []
        for spec in specs:
            records.append(run_one(spec))
            if on_done is not None:
                on_done(records[-1])
        return records

    import multiprocessing

    results: list[RunRecord | None] = [None] * len(specs)
    with _environment(_SINGLE_THREAD_ENV), ProcessPoolExecutor(
            max_workers=min(jobs, len(specs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, spec): index for index, spec in enumerate(specs)}
        for future in as_completed(futures):
            record = future.result()
            results[futures[future]] = record
            if on_done is not None:
                on_done(record)
    return [record for record in results if record is not None]
