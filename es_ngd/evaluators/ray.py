"""Ray-parallel evaluation of populations: :class:`RayEvaluator`.

Ray does the scheduling, the transport and the process management; this module only keeps a pool of
actors busy and makes the bookkeeping exact. Three decisions shape it:

* **Indices, not arrays.** Tasks carry the :class:`~es_ngd.population.Population` (mean, σ,
  factor, noise key) and a range of candidate indices; the worker regenerates those rows bit for bit
  with ``population.candidates(chunk)`` and sends back fitness values only (the driver already holds
  the rows, ``population.cache``). Populations drawn with device noise (``noise="device"``) are the
  exception: a worker need not have the device, so their rows travel instead. A population with a
  big factor goes into the object store once per generation and tasks carry a reference to it; a
  small one (a few KiB: diagonal, low-rank) travels inside each task, which spares every task an
  object-store lookup.
* **Every index is filled exactly once.** The driver tracks which task holds which indices. When an
  actor dies, its tasks go back in the queue and a fresh actor takes its place; results of tasks
  that were given up are never read, so no candidate is lost and none is counted twice.
* **A bad candidate never hangs the run.** The objective's exceptions come back as values
  (:class:`ObjectiveError` names the candidate), a per-evaluation ``timeout`` interrupts slow calls
  inside the worker, and a driver-side deadline kills a worker that cannot be interrupted.

Three modules import ray, and no other module of es_ngd does: this one (the driver: which task goes
where, which candidates are filled), :mod:`es_ngd.evaluators.ray_pool` (the actors: starting,
replacing, giving up) and :mod:`es_ngd.evaluators.ray_worker` (the actor's side: objective calls,
timers, what a chunk sends back).
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray import cloudpickle

from es_ngd.evaluators.ray_pool import WORKER_LOST, Slot, Task, WorkerError, WorkerPool, answers_before_death
from es_ngd.evaluators.ray_worker import _ChunkResult, _revive
from es_ngd.population import Population

#: Tasks sent to one actor ahead of time, so it starts its next chunk without a round trip.
PIPELINE_DEPTH = 2
#: Default number of tasks per worker per generation, to balance uneven evaluation times...
TASKS_PER_WORKER = 4
#: ...as long as a task lasts this long. Each task costs Ray about a millisecond of CPU and a few of
#: latency (more on a crowded machine), so fast objectives get one task per worker, the cheapest
#: split when evaluation times are equal. The driver learns the evaluation time from the workers.
MIN_TASK_SECONDS = 0.25
#: Extra seconds the driver allows beyond ``timeout`` per evaluation before it kills a worker whose
#: objective could not be interrupted (Ray's own latency, regenerating the rows, a slow start).
DEADLINE_GRACE = 2.0
#: A population that pickles to at most this many bytes travels inside each task; a bigger one goes
#: to the object store once per generation (ray.put) and tasks carry a reference. Inline is faster
#: for small ones (16 workers on 2 busy cores: 78 % efficiency instead of 73 %); Ray would itself put
#: arguments over 100 KiB into the object store, once per task.
INLINE_POPULATION_BYTES = 64 * 1024


class ObjectiveError(RuntimeError):
    """The objective raised on a candidate; ``__cause__`` is the exception it raised.

    ``index`` is the candidate's index in the population (``None`` with ``vectorized=True``, where a
    whole chunk fails at once), ``indices`` all the indices concerned, ``x`` the candidate row (or the
    chunk's rows) as a numpy array, and ``ask_id`` the population's noise key.
    """

    def __init__(self, message: str, indices: tuple[int, ...], x: np.ndarray, ask_id: int | None = None) -> None:
        super().__init__(message)
        self.indices = tuple(int(i) for i in indices)
        self.index = self.indices[0] if len(self.indices) == 1 else None
        self.x = x
        self.ask_id = ask_id

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.args[0], self.indices, self.x, self.ask_id)


@dataclass
class EvaluationStats:
    """Counters over the evaluator's life (see :attr:`RayEvaluator.stats`)."""

    evaluations: int = 0  #: fitness values returned (each candidate once per population)
    timed_out: int = 0  #: candidates ranked last because they ran past ``timeout``
    failed: int = 0  #: candidates ranked last because the objective raised (``on_error="rank_last"``)
    workers_replaced: int = 0  #: actors that died or were killed and were started again
    evaluation_seconds: float = 0.0  #: time workers spent in chunks they answered (objective and rows)
    tasks_resubmitted: int = 0  #: chunks sent again because their worker died before answering


class RayEvaluator:
    """Evaluates populations on a pool of Ray actors (see ``cluster/README.md`` for clusters).

    ``es_ngd.optimize(f, x0, sigma0, workers=8)`` builds one for you. With ask/tell, build it yourself,
    once, and close it (or use it as a context manager)::

        def make_env():                     # runs once per worker, not once per evaluation
            return gymnasium.make("Pendulum-v1")

        def episode_cost(x, env):           # with init_hook, the objective is f(x, state)
            ...

        with RayEvaluator(episode_cost, num_workers=16, num_cpus=0.5, init_hook=make_env) as evaluator:
            es = NGDES(np.zeros(p), 0.5, seed=1)
            while not es.stop():
                population = es.ask_population()
                es.tell(population.candidates(), evaluator.evaluate(population))

    The objective is called as ``f(x)`` with one candidate (a row of the backend's array type), or
    ``f(x, state)`` where ``state = init_hook()`` was built once per worker; with
    ``vectorized=True`` it gets a chunk ``X`` of shape ``(m, p)`` (``f(X)`` or ``f(X, state)``) and
    returns ``m`` values. Results come back in candidate order and equal a serial run's bit for bit:
    workers regenerate the rows from the population rather than receiving them (on the same
    machine; nodes whose BLAS rounds differently can differ in the last bits for large dense ``p``).

    Args:
        f: the objective (minimised).
        num_workers: actors in the pool (default: the CPUs of the Ray cluster).
        vectorized: ``f`` takes a chunk of rows and returns one value per row.
        init_hook: builds per-worker state (an environment, a model) once in each actor; it runs
            again in a replacement actor.
        chunk_size: candidates per task. The default splits the population evenly into up to
            ``TASKS_PER_WORKER`` tasks per worker, fewer when tasks would last less than
            ``MIN_TASK_SECONDS`` (measured by the workers), one per worker for fast objectives.
        num_cpus, num_gpus, resources: Ray resources per worker; fractions are allowed. The default
            ``num_cpus`` is 1, or the cluster's CPUs shared out evenly when that does not fit (16
            workers on 2 CPUs get 0.125 each); on an autoscaling cluster pass it explicitly.
        timeout: seconds allowed per evaluation (per call with ``vectorized=True``). A candidate
            that runs longer gets fitness ``inf``, which the strategy ranks last. The worker
            interrupts the objective with SIGALRM; an objective stuck where signals cannot reach it
            (inside C code) is stopped by killing its worker after ``timeout`` plus
            ``DEADLINE_GRACE`` seconds per candidate.
        on_error: ``"raise"`` (default): an exception in ``f`` stops the evaluation and reaches the
            caller as :class:`ObjectiveError` naming the candidate (index and x), chained from the
            original exception and its worker traceback. ``"rank_last"``: that candidate gets fitness
            NaN (ranked last by the strategy) and a warning gives the count and the first error.
        max_retries: how often a chunk is resubmitted after its worker died (after the first retry,
            one candidate per task, to isolate a candidate that crashes its process); beyond that
            :class:`WorkerError` (or NaN with ``on_error="rank_last"``).
        address: ``None`` starts a local Ray on this machine's CPUs (no dashboard, no usage
            statistics) unless one is already running; ``"auto"`` joins the cluster this machine
            belongs to; ``"ray://host:10001"`` connects through Ray Client.
        runtime_env: Ray runtime environment for the workers (``pip``, ``env_vars``, ``working_dir``).
        ray_init: more keyword arguments for ``ray.init`` when this evaluator starts Ray.
        startup_timeout: seconds to wait for the first worker to come up before giving up.
        keep_ray: leave a Ray that this evaluator started running at :meth:`close`, for later
            evaluators in this process to reuse instead of starting their own (Ray shuts it down at
            exit). :func:`es_ngd.optimize` passes ``True``, so repeated ``optimize(..., workers=N)``
            calls start Ray once.

    :meth:`close` kills the actors and shuts Ray down only if this evaluator started it (and not
    ``keep_ray``).
    """

    def __init__(self, f: Callable[..., Any], num_workers: int | None = None, *, vectorized: bool = False,
                 init_hook: Callable[[], Any] | None = None, chunk_size: int | None = None,
                 num_cpus: float | None = None, num_gpus: float = 0, resources: dict[str, float] | None = None,
                 timeout: float | None = None, on_error: str = "raise", max_retries: int = 3,
                 address: str | None = None, runtime_env: dict[str, Any] | None = None,
                 ray_init: dict[str, Any] | None = None, startup_timeout: float = 300.0,
                 keep_ray: bool = False) -> None:
        if on_error not in ("raise", "rank_last"):
            raise ValueError(f"on_error must be 'raise' or 'rank_last', got {on_error!r}")
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if num_workers is not None and (int(num_workers) != num_workers or num_workers < 1):
            raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
        self.vectorized = vectorized
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.timeout = None if timeout is None else float(timeout)
        self.on_error = on_error
        self.max_retries = int(max_retries)
        self.stats = EvaluationStats()
        self._closed = False
        self._seconds_per_evaluation: float | None = None  # measured by the workers, for chunking
        self._sized_group: Any = None  # the group whose populations were last measured, and the verdict:
        self._population_inline = True
        self._pool = WorkerPool((f, init_hook, vectorized, self.timeout, on_error), num_workers, num_cpus=num_cpus,
                                num_gpus=num_gpus, resources=resources, runtime_env=runtime_env, address=address,
                                ray_init=ray_init, keep_ray=keep_ray, max_retries=self.max_retries,
                                startup_timeout=float(startup_timeout), on_replace=self._count_replacement)
        self.num_workers = self._pool.num_workers

    def _count_replacement(self) -> None:
        self.stats.workers_replaced += 1

    # -- the pool --------------------------------------------------------------------------------
    def wait_until_ready(self, timeout: float | None = None) -> int:
        """Block until every worker has started (or ``timeout`` seconds passed); returns how many have.

        :meth:`evaluate` does not need this (it uses workers as they come up); it surfaces an
        ``init_hook`` error early, and lets a measurement start with the whole pool.
        """
        return self._pool.wait_until_ready(timeout)

    @property
    def workers(self) -> list[Any]:
        """The Ray actor handles of the pool, starting or ready (for monitoring)."""
        return [slot.actor for slot in self._pool.slots]

    def _chunks(self, n: int) -> list[np.ndarray]:
        """Contiguous ranges of candidate indices, one per task."""
        if self.chunk_size is not None:
            return [np.arange(start, min(start + self.chunk_size, n)) for start in range(0, n, self.chunk_size)]
        # A whole number of tasks per worker, sizes differing by at most one (larger ones first, so the
        # smaller ones fill in at the end): ragged chunks would leave some workers with an extra task.
        tasks = min(n, self.num_workers * self._tasks_per_worker(n))
        return np.array_split(np.arange(n), tasks)

    def _tasks_per_worker(self, n: int) -> int:
        if self._seconds_per_evaluation is None:
            return TASKS_PER_WORKER
        seconds_per_worker = n / self.num_workers * self._seconds_per_evaluation
        return max(1, min(TASKS_PER_WORKER, int(seconds_per_worker / MIN_TASK_SECONDS)))

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, population: Population | Any, context: Any = None) -> np.ndarray:
        """Fitness of every candidate of ``population`` (float64, in candidate order).

        ``population`` is what ``es.ask_population()`` returns: workers regenerate their rows from
        it. An ``(n, p)`` array of candidates (``es.ask()``) works too; its rows are sent to the
        workers as numpy arrays (more bytes per task than a population's description). ``context``,
        unless None, travels with the population once per generation and reaches every call of the
        objective as the keyword argument ``context`` (:mod:`es_ngd.evaluators.outcome`).
        """
        return self._evaluate(population, context, warn_level=3)[0]

    def evaluate_with_info(self, population: Population | Any, context: Any = None) -> tuple[np.ndarray, list[Any]]:
        """:meth:`evaluate`, and the ``info`` of each candidate's ``Outcome`` in candidate order (None for a
        candidate whose objective returned a bare number, failed or timed out)."""
        return self._evaluate(population, context, warn_level=3)

    def _evaluate(self, population: Population | Any, context: Any, warn_level: int) -> tuple[np.ndarray, list[Any]]:
        if self._closed:
            raise RuntimeError("this RayEvaluator is closed")
        if not isinstance(population, Population):
            population = _Rows.of(population)
        elif not population.regenerable:  # device noise: workers need not have the device, so rows travel
            population = _Rows.of(population.candidates())
        n = len(population)
        fitness = np.full(n, np.nan)
        filled = np.zeros(n, dtype=bool)
        infos: list[Any] = [None] * n
        # pickled once here, not once per task by Ray (Ray still carries the bytes inline in each task)
        payload = (population, context)
        population_arg = cloudpickle.dumps(payload) if self._travels_inline(population) else ray.put(payload)
        queue = deque(Task(indices) for indices in self._chunks(n))
        running: dict[Any, tuple[Slot, Task]] = {}  # ObjectRef -> where it runs and what it holds
        before = (self.stats.failed, self.stats.timed_out)
        first_failure: str | None = None
        waiting_since = time.monotonic()
        try:
            while not filled.all():
                self._dispatch(queue, running, population_arg)
                starting = self._pool.starting()
                if not running and not starting:  # cannot happen; never spin if it does
                    raise RuntimeError(f"internal error: candidates {np.flatnonzero(~filled).tolist()} "
                                       "are neither queued nor running")
                done, _ = ray.wait([*running, *starting], num_returns=1, timeout=self._poll_interval())
                self._enforce_deadlines(running, queue, fitness, filled)
                if not done:
                    if not self._pool.ready():
                        self._pool.check_startup(waiting_since)
                    continue
                ref = done[0]
                if ref not in running and ref not in starting:  # given up by the deadline check just now
                    continue
                if ref in starting:
                    self._pool.started(starting[ref])
                    waiting_since = time.monotonic()
                    continue
                slot, task = running.pop(ref)
                try:
                    result: _ChunkResult = ray.get(ref)
                except WORKER_LOST:
                    answers = self._worker_lost(slot, running, queue, fitness, filled)
                else:
                    slot.finish(task)
                    answers = [(task, result)]
                for answered, result in answers:
                    self._accept(population, answered, result, fitness, filled, infos)
                    first_failure = first_failure or result.first_failure
        except BaseException:
            # Leave no work behind: a later evaluate must not queue behind chunks of this one.
            for slot in {slot for slot, _ in running.values()}:
                self._pool.replace(slot)
            raise
        self.stats.evaluations += n
        failed, timed_out = self.stats.failed - before[0], self.stats.timed_out - before[1]
        if failed:
            warnings.warn(f"the objective failed on {failed} candidates, ranked last (fitness NaN); first: "
                          f"{first_failure or 'its worker kept dying'}", RuntimeWarning, stacklevel=warn_level)
        if timed_out:
            warnings.warn(f"{timed_out} candidates ran past timeout={self.timeout:g} s, ranked last (fitness inf)",
                          RuntimeWarning, stacklevel=warn_level)
        return fitness, infos

    def _travels_inline(self, population: Population | _Rows) -> bool:
        """Whether the population is small enough to go inside each task (measured once per group)."""
        if isinstance(population, _Rows):
            return population.rows.nbytes <= INLINE_POPULATION_BYTES
        if population.group is not self._sized_group:  # the same strategy sends populations of one size
            self._sized_group = population.group
            self._population_inline = len(cloudpickle.dumps(population)) <= INLINE_POPULATION_BYTES
        return self._population_inline

    def _learn_evaluation_time(self, seconds: float) -> None:
        previous = self._seconds_per_evaluation
        self._seconds_per_evaluation = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def _dispatch(self, queue: deque[Task], running: dict[Any, tuple[Slot, Task]], population_arg: Any) -> None:
        """Hand queued tasks to ready actors: one each first, then up to ``PIPELINE_DEPTH`` each.

        A task that was on an actor when it died runs alone: nothing queues behind it or ahead of it,
        so if its actor dies again, the death is its own. (With several tasks on a dead actor, the
        oldest unanswered one is blamed, and an answer the actor sent as it died can be lost.)
        """
        ready = self._pool.ready()
        for depth in range(1, PIPELINE_DEPTH + 1):
            for slot in ready:
                while queue and len(slot.inflight) < depth:
                    if slot.inflight and (queue[0].attempts or slot.inflight[-1].attempts):
                        break
                    task = queue.popleft()
                    # a plain (start, stop) pair: a numpy index array costs Ray about 0.1 ms more per task
                    bounds = (int(task.indices[0]), int(task.indices[-1]) + 1)
                    task.ref = slot.actor.evaluate.remote(population_arg, bounds)
                    if not slot.inflight:
                        slot.head_started = time.monotonic()
                    slot.inflight.append(task)
                    running[task.ref] = (slot, task)

    def _accept(self, population: Population, task: Task, result: _ChunkResult, fitness: np.ndarray,
                filled: np.ndarray, infos: list[Any]) -> None:
        """Take a worker's answer for ``task``: its values and infos, its counters, or its objective's error."""
        if result.error is not None:
            raise self._objective_error(population, task.indices, result.error)
        self._fill(fitness, filled, task.indices, result.values)
        if result.info is not None:
            for index, info in zip(task.indices, result.info, strict=True):
                infos[int(index)] = info
        self._learn_evaluation_time(result.seconds / len(task.indices))
        self.stats.evaluation_seconds += result.seconds
        self.stats.timed_out += result.timed_out
        self.stats.failed += result.failed

    def _fill(self, fitness: np.ndarray, filled: np.ndarray, indices: np.ndarray, values: np.ndarray) -> None:
        if filled[indices].any():  # the invariant the whole bookkeeping exists for
            raise RuntimeError(f"internal error: candidates {indices[filled[indices]].tolist()} answered twice")
        fitness[indices] = values
        filled[indices] = True

    def _worker_lost(self, slot: Slot, running: dict[Any, tuple[Slot, Task]], queue: deque[Task],
                     fitness: np.ndarray, filled: np.ndarray) -> list[tuple[Task, _ChunkResult]]:
        """A task's actor died: requeue what it had not answered; return what it had.

        The actor may have answered a task just before it died, with the driver yet to read the
        answer (Ray can report the death first). That answer counts: evaluating those candidates
        again would call the objective twice on them. The oldest unanswered task is taken to be the one
        that was running (see :meth:`_dispatch` for why that guess is needed only once per task).
        """
        tasks = list(slot.inflight)
        for task in tasks:
            running.pop(task.ref, None)
        answers = answers_before_death(tasks)
        self._pool.replace(slot)
        answered = {id(task) for task, _ in answers}
        lost = [task for task in tasks if id(task) not in answered]
        if lost:
            lost[0].attempts += 1
        for task in reversed(lost):  # requeued at the front, in their original order
            if task.attempts > self.max_retries:
                if self.on_error == "raise":
                    raise WorkerError(f"the worker evaluating candidates {task.indices.tolist()} died "
                                      f"{task.attempts} times (does the objective crash its process?)")
                self._fill(fitness, filled, task.indices, np.full(len(task.indices), np.nan))
                self.stats.failed += len(task.indices)
                continue
            self.stats.tasks_resubmitted += 1
            if task.attempts >= 2 and len(task.indices) > 1:  # isolate the candidate that kills workers
                queue.extendleft(Task(np.array([i]), task.attempts) for i in task.indices[::-1])
            else:
                queue.appendleft(task)
        return answers

    def _enforce_deadlines(self, running: dict[Any, tuple[Slot, Task]], queue: deque[Task],
                           fitness: np.ndarray, filled: np.ndarray) -> None:
        """Kill workers whose current task ran past its deadline (the objective ignored SIGALRM)."""
        if self.timeout is None:
            return
        now = time.monotonic()
        for slot in self._pool.slots:
            if not slot.inflight:
                continue
            head = slot.inflight[0]
            calls = 1 if self.vectorized else len(head.indices)  # vectorized: one call per chunk
            if now - slot.head_started <= calls * self.timeout + DEADLINE_GRACE:
                continue
            tasks = list(slot.inflight)
            for task in tasks:
                running.pop(task.ref, None)
            self._pool.replace(slot)
            queue.extendleft(reversed(tasks[1:]))
            if len(head.indices) > 1 and not self.vectorized:  # find out which candidate hangs
                queue.extendleft(Task(np.array([i]), head.attempts) for i in head.indices[::-1])
            else:
                self._fill(fitness, filled, head.indices, np.full(len(head.indices), math.inf))
                self.stats.timed_out += len(head.indices)

    def _poll_interval(self) -> float:
        """How long ``ray.wait`` may block: often enough to notice a missed deadline soon."""
        if self.timeout is None:
            return 1.0
        return max(0.01, min(1.0, self.timeout / 2))

    def _objective_error(self, population: Population, indices: np.ndarray,
                         error: tuple[int | None, BaseException, str]) -> ObjectiveError:
        position, exc, remote_traceback = error
        which = indices if position is None else indices[position:position + 1]
        rows = population.candidates()[which]  # the driver's own rows
        if isinstance(population, Population):
            rows = population.group.backend.to_numpy(rows)
        x = rows[0] if position is not None else rows
        where = (f"candidate {int(which[0])}" if position is not None
                 else f"the chunk of candidates {which.tolist()}")
        shown = np.array2string(x, precision=6, threshold=12, edgeitems=3)
        error_out = ObjectiveError(
            f"the objective raised {type(exc).__name__}: {exc} on {where} (population ask_id "
            f"{population.ask_id}), x = {shown}", tuple(which), x, population.ask_id)
        error_out.__cause__ = _revive(exc, remote_traceback)
        return error_out

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill the actors; shut Ray down if this evaluator started it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"RayEvaluator(num_workers={self.num_workers}, num_cpus={self._pool.actor_options['num_cpus']}, "
                f"timeout={self.timeout}, on_error={self.on_error!r}, closed={self._closed})")


@dataclass(frozen=True, eq=False)
class _Rows:
    """Candidates given as an array (``evaluate(es.ask())``): the rows themselves travel to the workers,
    with the two things of a :class:`Population` that the evaluator and the workers use."""

    rows: np.ndarray
    ask_id: None = None

    @classmethod
    def of(cls, candidates: Any) -> _Rows:
        rows = candidates.detach().cpu().numpy() if hasattr(candidates, "detach") else candidates
        try:
            rows = np.asarray(rows, dtype=float)
        except (TypeError, ValueError):
            rows = None
        if rows is None or rows.ndim != 2:
            raise TypeError("RayEvaluator.evaluate takes es.ask_population() (a Population) or an (n, p) array "
                            f"of candidates, got {type(candidates).__name__}")
        return cls(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def candidates(self, indices: Any = None) -> np.ndarray:
        return self.rows if indices is None else self.rows[np.asarray(indices)]


__all__ = ["EvaluationStats", "ObjectiveError", "RayEvaluator", "WorkerError"]
