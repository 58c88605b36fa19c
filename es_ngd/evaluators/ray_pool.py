"""The pool of Ray actors behind :class:`~es_ngd.evaluators.ray.RayEvaluator`: starting Ray and the
actors, noticing when one is up, replacing one that died, and giving up when none can start.

The evaluator (:mod:`es_ngd.evaluators.ray`) decides what each actor runs and keeps the books on
candidates; this module only knows actors (:class:`Slot`) and the tasks queued on them (:class:`Task`).
The actor's own code is :mod:`es_ngd.evaluators.ray_worker`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from es_ngd.evaluators.ray_worker import _ChunkResult, _revive, _Worker

#: Seconds to wait for Ray to settle the other tasks of an actor that died (see answers_before_death).
DEATH_SETTLE = 5.0
#: Seconds without any ready worker after which a warning says what the workers are waiting for.
STARTUP_WARNING = 15.0

#: Ray errors that mean "the process (or node) running the task is gone", as opposed to a bug.
WORKER_LOST = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
               ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError,
               ray.exceptions.ObjectLostError)


class WorkerError(RuntimeError):
    """Workers could not start (``init_hook`` raised, no resources) or kept dying on the same candidates."""


_RemoteWorker = ray.remote(_Worker)


@dataclass(eq=False)
class Task:
    """A chunk of one population's candidates, queued or running on an actor."""

    indices: np.ndarray  #: a contiguous range of candidate indices (workers receive only its bounds)
    attempts: int = 0  #: times a worker died while running this task
    ref: Any = None  #: the ObjectRef of the running submission


@dataclass(eq=False)
class Slot:
    """One place in the pool: an actor, starting (``ready_ref`` set) or ready, and its queued tasks."""

    actor: Any
    ready_ref: Any
    inflight: deque[Task] = field(default_factory=deque)
    head_started: float = 0.0  #: when the oldest in-flight task started running (for deadlines)
    start_failures: int = 0

    def finish(self, task: Task) -> None:
        """``task`` answered: drop it; the next one here starts now."""
        was_head = self.inflight and self.inflight[0] is task
        self.inflight.remove(task)
        if was_head:
            self.head_started = time.monotonic()


class WorkerPool:
    """``num_workers`` actors running ``_Worker(*worker_args)``, started on Ray (started here if needed).

    ``on_replace`` is called once for every actor started in place of one that died or was killed.
    The arguments are :class:`~es_ngd.evaluators.ray.RayEvaluator`'s, which documents them.
    """

    def __init__(self, worker_args: tuple[Any, ...], num_workers: int | None, *, num_cpus: float | None,
                 num_gpus: float, resources: dict[str, float] | None, runtime_env: dict[str, Any] | None,
                 address: str | None, ray_init: dict[str, Any] | None, keep_ray: bool, max_retries: int,
                 startup_timeout: float, on_replace: Callable[[], None]) -> None:
        self.max_retries, self.startup_timeout, self._on_replace = max_retries, startup_timeout, on_replace
        self._warned_startup = False
        self._owns_ray = not ray.is_initialized() and not keep_ray
        if not ray.is_initialized():
            start_ray(address, ray_init or {})
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.num_workers = int(num_workers) if num_workers is not None else max(1, int(cluster_cpus))
        if num_cpus is None:  # 1 each if that fits, else share the CPUs out (Ray's resolution: 1e-4)
            num_cpus = min(1.0, math.floor(1e4 * cluster_cpus / self.num_workers) / 1e4)
        self.actor_options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": 0}
        if resources:
            self.actor_options["resources"] = dict(resources)
        if runtime_env:
            self.actor_options["runtime_env"] = runtime_env
        self._worker_args = worker_args
        self.slots = [self._new_slot() for _ in range(self.num_workers)]

    def _new_slot(self, start_failures: int = 0) -> Slot:
        actor = _RemoteWorker.options(**self.actor_options).remote(*self._worker_args)
        return Slot(actor=actor, ready_ref=actor.ready.remote(), start_failures=start_failures)

    def ready(self) -> list[Slot]:
        """The slots whose actor has started."""
        return [slot for slot in self.slots if slot.ready_ref is None]

    def starting(self) -> dict[Any, Slot]:
        """The slots whose actor is still starting, by the ObjectRef that settles when it is up."""
        return {slot.ready_ref: slot for slot in self.slots if slot.ready_ref is not None}

    def replace(self, slot: Slot, start_failures: int = 0) -> None:
        """Kill the slot's actor (if it is not dead already) and start a fresh one in its place."""
        ray.kill(slot.actor, no_restart=True)
        fresh = self._new_slot(start_failures)
        slot.actor, slot.ready_ref, slot.start_failures = fresh.actor, fresh.ready_ref, fresh.start_failures
        slot.inflight.clear()
        self._on_replace()

    def started(self, slot: Slot) -> None:
        """The slot's ``ready`` call settled: mark it ready, restart it, or raise if it cannot start."""
        try:
            _, init_error = ray.get(slot.ready_ref)
        except WORKER_LOST as err:
            if getattr(err, "actor_init_failed", False):  # deterministic: would fail again
                raise WorkerError("a Ray worker could not start (can it import es_ngd and unpickle the "
                                  "objective and init_hook?)") from err
            if slot.start_failures >= self.max_retries:
                raise WorkerError(f"a Ray worker died while starting, {slot.start_failures + 1} times") from err
            self.replace(slot, slot.start_failures + 1)
            return
        if init_error is not None:
            raise WorkerError("init_hook raised in a Ray worker") from _revive(*init_error)
        slot.ready_ref = None

    def wait_until_ready(self, timeout: float | None = None) -> int:
        """Block until every worker has started (or ``timeout`` seconds passed); returns how many have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            starting = self.starting()
            left = None if deadline is None else deadline - time.monotonic()
            if not starting or (left is not None and left <= 0):
                return len(self.slots) - len(starting)
            done, _ = ray.wait(list(starting), num_returns=1, timeout=left)
            for ref in done:
                self.started(starting[ref])

    def check_startup(self, waiting_since: float) -> None:
        """No worker is ready: say so after ``STARTUP_WARNING`` seconds, give up after ``startup_timeout``."""
        waited = time.monotonic() - waiting_since
        if waited < min(STARTUP_WARNING, self.startup_timeout) or (
                self._warned_startup and waited < self.startup_timeout):
            return
        asked = {k: v for k, v in self.actor_options.items() if k in ("num_cpus", "num_gpus", "resources")}
        message = (f"no Ray worker has started after {waited:.0f} s; each asks for {asked}, the cluster has "
                   f"{ray.cluster_resources()} (free: {ray.available_resources()})")
        if waited >= self.startup_timeout:
            raise WorkerError(message)
        warnings.warn(message + f"; still waiting (startup_timeout={self.startup_timeout:g} s)",
                      RuntimeWarning, stacklevel=4)
        self._warned_startup = True

    def close(self) -> None:
        """Kill the actors; shut Ray down if this pool started it."""
        if ray.is_initialized():
            for slot in self.slots:
                ray.kill(slot.actor, no_restart=True)
            if self._owns_ray:
                ray.shutdown()
        self.slots = []


def answers_before_death(tasks: list[Task]) -> list[tuple[Task, _ChunkResult]]:
    """The answers a dead actor sent for ``tasks`` before it died, as ``(task, result)`` pairs.

    Ray settles every task of a dead actor (a value, or an actor-died error) once it learns of the
    death, so the wait is short; a task still unsettled after ``DEATH_SETTLE`` seconds counts as lost.
    """
    settled, _ = ray.wait([task.ref for task in tasks], num_returns=len(tasks), timeout=DEATH_SETTLE)
    settled_refs = set(settled)
    answers = []
    for task in tasks:
        if task.ref in settled_refs:
            try:
                answers.append((task, ray.get(task.ref)))
            except WORKER_LOST:
                pass
    return answers


def start_ray(address: str | None, ray_init: dict[str, Any]) -> None:
    """``ray.init`` with quiet local defaults; ``address`` joins an existing cluster instead."""
    if address is None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves this machine
        options = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
    else:
        options = {}
    ray.init(address=address, **{**options, **ray_init})
