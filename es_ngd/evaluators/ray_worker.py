"""The worker side of :class:`~es_ngd.evaluators.ray.RayEvaluator`: the actor class and what it sends back.

Everything here runs inside a Ray actor process (the driver-side scheduler is in
:mod:`es_ngd.evaluators.ray`): the actor holds the objective and its ``init_hook`` state, regenerates
the rows of a chunk of candidate indices from the population, calls the objective on them under a
per-evaluation timer, and returns the values with what went wrong, as values, never as exceptions
that would look like a dead worker. Exceptions travel as ``(exception, traceback text)`` pairs.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray import cloudpickle

from es_ngd.evaluators.outcome import population_outcome, scalar_outcome
from es_ngd.population import Population


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text, shown as the cause of the original exception."""

    def __str__(self) -> str:
        return str(self.args[0])


class _EvaluationTimeout(BaseException):
    """Raised inside the objective when its time is up.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that an ``except Exception`` in user code
    does not swallow it.
    """


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _EvaluationTimeout


def _portable(exc: BaseException) -> tuple[BaseException, str]:
    """The exception (or a stand-in if it cannot be pickled) and its traceback text."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        cloudpickle.dumps(exc)
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc, text


def _revive(exc: BaseException, remote_traceback: str) -> BaseException:
    exc.__cause__ = _RemoteTraceback(f"\n\"\"\"\n{remote_traceback}\"\"\"")
    return exc


_NO_STATE = object()


@dataclass
class _ChunkResult:
    """What a worker sends back for one chunk: values in chunk order, and what went wrong."""

    values: np.ndarray  # float64; inf where timed out, NaN where the objective failed
    timed_out: int = 0
    failed: int = 0
    #: with on_error="raise": (position in chunk or None for the whole chunk, exception, traceback)
    error: tuple[int | None, BaseException, str] | None = None
    first_failure: str | None = None  # with on_error="rank_last": "ValueError: …" of the first one
    seconds: float = 0.0  # wall time of the whole chunk in the worker
    #: the ``info`` of each candidate's Outcome, in chunk order; None when the objective returned none
    info: list[Any] | None = None

    def put_info(self, position: int, info: Any) -> None:
        if info is not None:
            if self.info is None:
                self.info = [None] * len(self.values)
            self.info[position] = info


class _Worker:
    """The Ray actor: holds the objective and the ``init_hook`` state; evaluates chunks of indices."""

    def __init__(self, objective: Callable[..., Any], init_hook: Callable[[], Any] | None, vectorized: bool,
                 timeout: float | None, on_error: str) -> None:
        self.objective = objective
        self.vectorized = vectorized
        self.timeout = timeout
        self.on_error = on_error
        self.state: Any = _NO_STATE
        self.context: Any = None  # the current generation's, set by each evaluate
        self.init_error: tuple[BaseException, str] | None = None
        if init_hook is not None:
            try:
                self.state = init_hook()
            except Exception as exc:
                self.init_error = _portable(exc)
        # Ray runs a plain actor's methods on the process's main thread, where SIGALRM can interrupt
        # the objective. Without it (another platform, a threaded actor) only the driver's deadline acts.
        self.use_timer = (timeout is not None and hasattr(signal, "setitimer")
                          and threading.current_thread() is threading.main_thread())
        if self.use_timer:
            signal.signal(signal.SIGALRM, _raise_timeout)

    def ready(self) -> tuple[int, tuple[BaseException, str] | None]:
        """The process id and, if ``init_hook`` raised, its exception: the driver waits for this."""
        return os.getpid(), self.init_error

    def evaluate(self, payload: bytes | tuple[Population, Any], indices: tuple[int, int]) -> _ChunkResult:
        """Fitness of candidates ``start, …, stop − 1`` (``indices = (start, stop)``) of the population in
        ``payload = (population, context)`` (pickled once per generation by the driver, or fetched from the
        object store by Ray); ``context``, unless None, goes to every objective call as ``context=``."""
        start = time.perf_counter()
        if isinstance(payload, bytes):
            payload = cloudpickle.loads(payload)
        population, context = payload
        self.context = context
        result = self._evaluate_rows(population.candidates(np.arange(*indices)))
        result.seconds = time.perf_counter() - start
        return result

    def _evaluate_rows(self, rows: Any) -> _ChunkResult:
        if self.vectorized:
            return self._evaluate_chunk(rows)
        result = _ChunkResult(values=np.full(len(rows), np.nan))
        for position, x in enumerate(rows):
            try:
                result.values[position], info = self._call(x, scalar_outcome)
                result.put_info(position, info)
            except _EvaluationTimeout:
                result.values[position] = math.inf
                result.timed_out += 1
            except Exception as exc:
                if self.on_error == "raise":
                    result.error = (position, *_portable(exc))
                    return result  # the run stops here: no point evaluating the rest
                result.failed += 1
                result.first_failure = result.first_failure or f"{type(exc).__name__}: {exc}"
        return result

    def _evaluate_chunk(self, rows: Any) -> _ChunkResult:
        m = len(rows)
        try:
            values, info = self._call(rows, lambda value: population_outcome(value, m))
            return _ChunkResult(values=values, info=None if all(i is None for i in info) else info)
        except _EvaluationTimeout:
            return _ChunkResult(values=np.full(m, math.inf), timed_out=m)
        except Exception as exc:
            if self.on_error == "raise":
                return _ChunkResult(values=np.full(m, np.nan), error=(None, *_portable(exc)))
            return _ChunkResult(values=np.full(m, np.nan), failed=m, first_failure=f"{type(exc).__name__}: {exc}")

    def _call(self, x: Any, convert: Callable[[Any], Any]) -> Any:
        args = (x,) if self.state is _NO_STATE else (x, self.state)
        kwargs = {} if self.context is None else {"context": self.context}
        if not self.use_timer:
            return convert(self.objective(*args, **kwargs))
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            return convert(self.objective(*args, **kwargs))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
