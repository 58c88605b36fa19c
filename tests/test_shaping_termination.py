"""Fitness shaping and the fitness-history termination criteria, checked against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from es_ngd.shaping import centered_ranks, xnes_utilities
from es_ngd.termination import Termination, TerminationOptions


def xnes_by_definition(f: np.ndarray) -> np.ndarray:
    """Utility of each sample from its rank, ties sharing the mean utility of their ranks."""
    n = len(f)
    weights = [max(0.0, math.log(n / 2 + 1) - math.log(i)) for i in range(1, n + 1)]
    by_rank = [w / sum(weights) - 1.0 / n for w in weights]
    ordered = sorted(set(f.tolist()))
    out, first = {}, 0
    for value in ordered:
        count = int((f == value).sum())
        out[value] = sum(by_rank[first:first + count]) / count
        first += count
    return np.array([out[v] for v in f.tolist()])


@pytest.mark.parametrize("n", [2, 7, 24, 101])
def test_xnes_utilities_match_their_definition(n: int) -> None:
    rng = np.random.default_rng(n)
    distinct = rng.standard_normal(n)
    tied = rng.integers(0, max(2, n // 3), n).astype(float)  # many ties
    for f in (distinct, tied):
        u = xnes_utilities(f)
        np.testing.assert_allclose(u, xnes_by_definition(f), rtol=0, atol=1e-15)
        assert abs(u.sum()) < 1e-12
        assert u[np.argmin(f)] == u.max()
    xnes_utilities(distinct)[0] = 1.0  # the cached rank weights are never handed out writable
    np.testing.assert_allclose(xnes_utilities(distinct), xnes_by_definition(distinct), atol=1e-15)


def test_equal_fitness_gives_exactly_zero_utilities() -> None:
    for shaper in (xnes_utilities, centered_ranks):
        assert not shaper(np.full(9, 3.0)).any()


def feed(termination: Termination, history: list[list[float]]) -> None:
    for values in history:
        termination.record(np.asarray(values, dtype=float))


def test_tolfun_compares_the_window_of_best_values_and_the_newest_worst() -> None:
    options = TerminationOptions(tolfun=1e-3)
    dim, popsize = 3, 30  # window: 10 + ceil(30 * 3 / 30) = 13 generations
    rng = np.random.default_rng(0)
    history = [list(1.0 + 1e-4 * rng.random(5)) for _ in range(20)]
    check = {"fbest": 1.0, "evaluations": 0, "iterations": 0, "sigma": 1.0, "max_std": 1.0, "condition": 1.0,
             "numerical_error": None}

    termination = Termination(options, dim, popsize)
    assert termination.tolfun_window == 13
    feed(termination, history[:12])
    assert "tolfun" not in termination.check(**check)  # window not full yet
    feed(termination, history[12:])
    window = [min(values) for values in history[-13:]]
    expected = max(max(history[-1]), max(window)) - min(window)
    assert termination.fitness_range() == expected
    assert "tolfun" in termination.check(**check)

    feed(termination, [[1.0, 1.5]])  # a spread-out newest generation keeps the search going
    assert "tolfun" not in termination.check(**check)


def test_termination_state_of_version_0_1_0_loads_to_the_same_criteria() -> None:
    options = TerminationOptions(tolfun=1e-3)
    termination = Termination(options, 3, 30)
    rng = np.random.default_rng(1)
    feed(termination, [list(2.0 + 1e-4 * rng.random(6)) for _ in range(15)])
    state = termination.state_dict()
    old = {k: v for k, v in state.items() if k != "last_worst"}
    old["last_range"] = termination.fitness_range()  # what 0.1.0 stored instead
    restored = Termination(options, 3, 30)
    restored.load_state_dict(old)
    assert restored.fitness_range() == pytest.approx(termination.fitness_range(), rel=0, abs=1e-15)
