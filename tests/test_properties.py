"""Property tests: no sequence of ask / tell / bad input / save / load leaves the strategy corrupted.

After every action the strategy must have a finite mean, σ > 0, an invertible factor (finite
log-determinant), and counters that agree with what happened: ``iterations`` is the number of
successful tells and ``evaluations`` the sum of their population sizes. A tell that raises must leave
the state object exactly as it was.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import es_ngd

STRUCTURES = ["diag", "dense", "tril", "up:1", "low:1"]
ACTIONS = ["ask", "ask_n", "tell", "tell", "tell", "tell_nan", "tell_wrong_length", "tell_wrong_shape",
           "tell_foreign_row", "tell_text", "tell_without_ask", "state_dict_round_trip", "file_round_trip"]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

configs = st.fixed_dictionaries({
    "p": st.integers(1, 4),
    "structure": st.sampled_from(STRUCTURES),
    "popsize": st.sampled_from([None, 2, 3, 7]),
    "mirrored": st.booleans(),
    "nonfinite": st.sampled_from(["rank_last", "raise"]),
    "seed": st.integers(0, 2**32),
})
# fitness values as an adversary would send them: huge, tiny, tied, signed, NaN and inf
fitness_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0]))


class Model:
    """What the counters must be, kept alongside the strategy."""

    def __init__(self) -> None:
        self.successful_tells = 0
        self.told_rows = 0
        self.pending_rows: int | None = None


def make(config: dict) -> es_ngd.NGDES:
    p = config["p"]
    structure = config["structure"].replace(":1", f":{min(1, p)}")
    return es_ngd.NGDES(np.linspace(-1, 1, p), 0.5, structure=structure, popsize=config["popsize"],
                        seed=config["seed"], mirrored=config["mirrored"], nonfinite=config["nonfinite"])


def check_invariants(es: es_ngd.NGDES, model: Model) -> None:
    s = es.state
    assert bool(np.isfinite(es.backend.to_numpy(s.mean)).all())
    assert math.isfinite(s.sigma) and s.sigma > 0
    assert math.isfinite(es.group.logdet(s.factor))
    assert s.iterations == model.successful_tells
    assert s.evaluations == model.told_rows
    assert s.asks >= s.iterations


def tell(es: es_ngd.NGDES, model: Model, X, f) -> None:
    """Tell, and check the all-or-nothing contract against the model."""
    before = es.state
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN fitness is announced by a warning
            es.tell(X, f)
    except (ValueError, TypeError, RuntimeError):
        assert es.state is before  # rejected input changes nothing
        return
    model.successful_tells += 1
    model.told_rows += model.pending_rows
    model.pending_rows = None


def apply(action: str, es: es_ngd.NGDES, model: Model, config: dict, data: st.DataObject,
          directory: Path) -> es_ngd.NGDES:
    """Do ``action``; returns the strategy to go on with (a fresh one after a round trip)."""
    n = model.pending_rows
    pending = es._pending[2] if es._pending is not None else None
    if action == "ask":
        model.pending_rows = len(es.ask())
    elif action == "ask_n":
        model.pending_rows = len(es.ask(data.draw(st.integers(2, 6), label="n")))
    elif action == "tell_without_ask" or n is None:
        if n is not None:  # answer the pending ask first, so that the next tell has none to answer
            tell(es, model, pending, np.zeros(n))
        with pytest.raises(RuntimeError):
            es.tell(np.zeros((2, es.dim)), [0.0, 0.0])
    elif action == "tell":
        tell(es, model, pending, data.draw(st.lists(fitness_values, min_size=n, max_size=n), label="f"))
    elif action == "tell_nan":
        tell(es, model, pending, [math.nan] * n)
    elif action == "tell_wrong_length":
        tell(es, model, pending, np.zeros(n + data.draw(st.sampled_from([-1, 1]), label="delta")))
    elif action == "tell_wrong_shape":
        tell(es, model, np.zeros((n, es.dim + 1)), np.zeros(n))
    elif action == "tell_foreign_row":
        X = np.array(pending, copy=True)
        X[data.draw(st.integers(0, n - 1), label="row")] += 1.0
        tell(es, model, X, np.zeros(n))
    elif action == "tell_text":
        tell(es, model, pending, ["a"] * n)
    elif action == "state_dict_round_trip":
        fresh = make({**config, "seed": 0, "popsize": None})
        fresh.load_state_dict(es.state_dict())
        model.pending_rows = None  # a pending ask is not part of the saved state
        return fresh
    elif action == "file_round_trip":
        es.save(directory / "state.npz")
        model.pending_rows = None
        return es_ngd.NGDES.load(directory / "state.npz")
    return es


@settings(max_examples=2500, **SETTINGS)
@given(config=configs, actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=16), data=st.data())
def test_no_sequence_of_actions_corrupts_the_strategy(config, actions, data):
    es, model = make(config), Model()
    with tempfile.TemporaryDirectory() as directory:
        for action in actions:
            es = apply(action, es, model, config, data, Path(directory))
            check_invariants(es, model)


@settings(max_examples=400, **SETTINGS)
@given(config=configs, generations=st.integers(1, 6), continued=st.integers(1, 6), data=st.data())
def test_a_round_trip_anywhere_continues_the_run_identically(config, generations, continued, data):
    """Save after any number of generations (with adversarial fitness), load, and both copies agree."""
    a = make(config)
    for _ in range(generations):
        X = a.ask()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                a.tell(X, data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(X), max_size=len(X))))
            except ValueError:
                pass
    b = make({**config, "seed": 1})
    b.load_state_dict(a.state_dict())
    for _ in range(continued):
        Xa, Xb = a.ask(), b.ask()
        assert np.asarray(Xa).tobytes() == np.asarray(Xb).tobytes()
        f = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(Xa), max_size=len(Xa)))
        a.tell(Xa, f)
        b.tell(Xb, f)
    assert a.state.sigma == b.state.sigma and a.state.fbest == b.state.fbest
