"""Bad input gets a clear error, and an error leaves the strategy exactly as it was."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import es_ngd


def _snapshot(es: es_ngd.NGDES) -> tuple:
    s = es.state
    return (s, {k: np.array(v, copy=True) for k, v in s.factor.items()}, np.array(s.mean, copy=True),
            es._pending)


def _assert_unchanged(es: es_ngd.NGDES, snap: tuple) -> None:
    state, factor, mean, pending = snap
    assert es.state is state and es._pending is pending
    for key, value in factor.items():
        np.testing.assert_array_equal(es.state.factor[key], value)
    np.testing.assert_array_equal(es.state.mean, mean)


@pytest.mark.parametrize(("x0", "message"), [
    (np.zeros((2, 2, 2)), "1-D"),
    ([], "non-empty"),
    ([1.0, np.nan], "finite"),
    ([np.inf, 0.0], "finite"),
])
def test_bad_x0(x0, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        es_ngd.NGDES(x0, 1.0)


@pytest.mark.parametrize("sigma0", [0.0, -1.0, np.nan, np.inf])
def test_bad_sigma0(sigma0: float) -> None:
    with pytest.raises(ValueError, match="sigma0"):
        es_ngd.NGDES(np.zeros(3), sigma0)


def test_bad_options() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['popsiz'\]; valid options: .*'popsize'|popsiz"):
        es_ngd.NGDES(np.zeros(3), 1.0, popsiz=3)
    with pytest.raises(ValueError, match="population size"):
        es_ngd.NGDES(np.zeros(3), 1.0, popsize=1)
    with pytest.raises(ValueError, match="seed"):
        es_ngd.NGDES(np.zeros(3), 1.0, seed=-2)
    with pytest.raises(ValueError, match="lr_factor"):
        es_ngd.NGDES(np.zeros(3), 1.0, lr_factor=-0.1)
    with pytest.raises(ValueError, match="fitness shaping"):
        es_ngd.NGDES(np.zeros(3), 1.0, shaping="linear")
    with pytest.raises(ValueError, match="nonfinite"):
        es_ngd.NGDES(np.zeros(3), 1.0, nonfinite="ignore")
    with pytest.raises(ValueError, match="unknown backend"):
        es_ngd.NGDES(np.zeros(3), 1.0, backend="jax")


def test_tell_without_ask() -> None:
    es = es_ngd.NGDES(np.zeros(3), 1.0, seed=0)
    with pytest.raises(RuntimeError, match="preceding ask"):
        es.tell(np.zeros((7, 3)), np.zeros(7))
    x = es.ask()
    es.tell(x, np.arange(7.0))
    with pytest.raises(RuntimeError, match="preceding ask"):
        es.tell(x, np.arange(7.0))  # the same generation twice


@pytest.mark.parametrize(("make_x", "make_f", "error", "message"), [
    (lambda x: x[:-1], lambda x: np.arange(len(x)), ValueError, "shape"),
    (lambda x: x[:, :-1], lambda x: np.arange(len(x)), ValueError, "shape"),
    (lambda x: x, lambda x: np.arange(len(x) + 1), ValueError, "expected 7 fitness values"),
    (lambda x: x, lambda x: np.zeros((len(x), 2)), ValueError, "expected 7 fitness values"),
    (lambda x: x + 1e-9, lambda x: np.arange(len(x)), ValueError, "not those of the last ask"),
    (lambda x: x[::-1], lambda x: np.arange(len(x)), ValueError, "not those of the last ask"),
    (lambda x: x, lambda x: ["a"] * len(x), TypeError, "real numbers"),
])
def test_bad_tell_is_an_error_that_changes_nothing(make_x, make_f, error, message: str) -> None:
    es = es_ngd.NGDES(np.ones(3), 1.0, seed=0, structure="up:1")
    x = es.ask()
    snap = _snapshot(es)
    with pytest.raises(error, match=message):
        es.tell(make_x(x), make_f(x))
    _assert_unchanged(es, snap)
    es.tell(x, np.arange(len(x), dtype=float))  # the pending ask can still be answered
    assert es.state.iterations == 1


def test_an_older_ask_cannot_be_told() -> None:
    es = es_ngd.NGDES(np.ones(3), 1.0, seed=0)
    first = es.ask()
    es.ask()
    with pytest.raises(ValueError, match="not those of the last ask"):
        es.tell(first, np.arange(len(first), dtype=float))


def test_a_copy_of_the_asked_rows_is_accepted() -> None:
    es = es_ngd.NGDES(np.ones(3), 1.0, seed=0)
    x = es.ask()
    es.tell(np.array(x.tolist()), np.arange(len(x), dtype=float))
    assert es.state.iterations == 1


def test_nonfinite_fitness_ranked_last_with_a_warning() -> None:
    es = es_ngd.NGDES(np.ones(4), 1.0, seed=0)
    x = es.ask()
    f = np.arange(len(x), dtype=float)
    f[0], f[3] = np.nan, -np.inf  # -inf is not "best": it is ranked last too
    with pytest.warns(RuntimeWarning, match="2 of 8 fitness values are NaN or inf"):
        es.tell(x, f)
    assert es.result.fbest == 1.0  # the best finite value
    assert np.isfinite(es.mean).all()


def test_nonfinite_fitness_can_be_an_error() -> None:
    es = es_ngd.NGDES(np.ones(4), 1.0, seed=0, nonfinite="raise")
    x = es.ask()
    snap = _snapshot(es)
    with pytest.raises(ValueError, match=r"NaN or inf \(indices \[2\]\)"):
        es.tell(x, [0, 1, np.nan, 3, 4, 5, 6, 7])
    _assert_unchanged(es, snap)


def test_all_nonfinite_fitness_does_not_move_the_search() -> None:
    es = es_ngd.NGDES(np.ones(4), 1.0, seed=0)
    x = es.ask()
    with pytest.warns(RuntimeWarning):
        es.tell(x, np.full(len(x), np.nan))
    np.testing.assert_array_equal(es.mean, np.ones(4))
    assert es.sigma == 1.0


def test_injected_points_are_accepted_when_allowed() -> None:
    es = es_ngd.NGDES(np.ones(4), 1.0, seed=0, accept_injected=True)
    x = np.array(es.ask())
    x[0] = 0.0  # the optimum of the sphere, injected
    es.tell(x, (x**2).sum(1))
    assert es.result.fbest == 0.0
    np.testing.assert_array_equal(es.result.xbest, np.zeros(4))
    assert np.isfinite(es.mean).all() and es.state.iterations == 1


def test_import_needs_numpy_only() -> None:
    code = ("import sys\n"
            "for name in ('torch', 'ray', 'gymnasium', 'cma', 'scipy', 'matplotlib', 'rich'):\n"
            "    sys.modules[name] = None  # any import of these now fails\n"
            "import numpy as np, es_ngd\n"
            "r = es_ngd.optimize(lambda x: float((x**2).sum()), np.ones(3), 1.0, structure='tril', seed=1,"
            " ftarget=1e-8, maxfevals=5000)\n"
            "assert r.fbest < 1e-8, r\n")
    subprocess.run([sys.executable, "-c", code], check=True)
