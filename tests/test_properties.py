"""Property tests: no sequence of ask / tell / bad input / save / load leaves the strategy corrupted.

After every action the strategy must have a finite mean, σ > 0, an invertible factor (finite
log-determinant), and counters that agree with what happened: ``iterations`` is the number of
successful tells and ``evaluations`` the sum of their population sizes. A tell that raises must leave
the state object exactly as it was. The actions include editing the asked array in place (refused,
or injected with ``accept_injected``), generations with no finite value (``"nonfinite"`` stops the
run after ``tolnonfinite`` of them in a row) and checkpoints whose metadata was crafted (refused on
load); a second suite throws adversarial values at every option.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import es_ngd
from es_ngd import checkpoint

STRUCTURES = ["diag", "dense", "tril", "up:1", "low:1"]
ACTIONS = ["ask", "ask_n", "tell", "tell", "tell", "tell_nan", "tell_wrong_length", "tell_wrong_shape",
           "tell_foreign_row", "tell_text", "tell_without_ask", "state_dict_round_trip", "file_round_trip",
           "tell_edited_in_place", "tell_all_nonfinite", "tell_all_nonfinite", "crafted_checkpoint"]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

configs = st.fixed_dictionaries({
    "p": st.integers(1, 4),
    "structure": st.sampled_from(STRUCTURES),
    "popsize": st.sampled_from([None, 2, 3, 7]),
    "mirrored": st.booleans(),
    "nonfinite": st.sampled_from(["rank_last", "raise"]),
    "accept_injected": st.booleans(),
    "seed": st.integers(0, 2**32),
})
TOLNONFINITE = es_ngd.Options().tolnonfinite
#: metadata edits that no valid checkpoint holds: (path in the metadata JSON, value)
CRAFTED = [(("state", "sigma"), -1.0), (("state", "sigma"), 0.0), (("state", "sigma"), "1"), (("state", "sigma"), None),
           (("popsize",), 1e12), (("popsize",), 1), (("popsize",), True), (("popsize",), 2.5),
           (("state", "iterations"), -1), (("state", "iterations"), 10**9), (("state", "asks"), True),
           (("state", "fbest"), math.nan), (("state", "fbest"), "0"), (("seed",), -5), (("dim",), 0),
           (("termination", "recent_best"), [math.nan]), (("termination", "flat_generations"), 1.5),
           (("numerical_error",), 7), (("structure",), "nonsense"), (("options", "tolx"), "a"),
           (("options", "popsiz"), 3), (("backend", "name"), "jax")]
#: array edits: (name pattern in the archive, what to do)
CRAFTED_ARRAYS = ["nan_in_factor", "singular_factor", "short_mean", "inf_in_mean", "long_xbest"]
# fitness values as an adversary would send them: huge, tiny, tied, signed, NaN and inf
fitness_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0]))


class Model:
    """What the counters must be, kept alongside the strategy."""

    def __init__(self) -> None:
        self.successful_tells = 0
        self.told_rows = 0
        self.pending_rows: int | None = None
        self.asked: np.ndarray | None = None  #: the array the last ask() handed out (the caller's own)
        self.nonfinite_run = 0  #: successful tells in a row whose fitness had no finite value


def make(config: dict) -> es_ngd.NGDES:
    p = config["p"]
    structure = config["structure"].replace(":1", f":{min(1, p)}")
    options = dict(structure=structure, seed=config["seed"], mirrored=config["mirrored"],
                   nonfinite=config["nonfinite"], accept_injected=config.get("accept_injected", False))
    popsize = config["popsize"]
    if config["mirrored"] and popsize == 2:  # a single mirrored pair cannot adapt: refused
        with pytest.raises(ValueError, match="mirrored"):
            es_ngd.NGDES(np.linspace(-1, 1, p), 0.5, popsize=2, **options)
        popsize = 3
    return es_ngd.NGDES(np.linspace(-1, 1, p), 0.5, popsize=popsize, **options)


def check_invariants(es: es_ngd.NGDES, model: Model) -> None:
    s = es.state
    assert bool(np.isfinite(es.backend.to_numpy(s.mean)).all())
    assert math.isfinite(s.sigma) and s.sigma > 0
    assert math.isfinite(es.group.logdet(s.factor))
    assert s.iterations == model.successful_tells
    assert s.evaluations == model.told_rows
    assert s.asks >= s.iterations
    assert ("nonfinite" in es.stop()) == (model.nonfinite_run >= TOLNONFINITE)
    assert (s.xbest is None) == (s.fbest == math.inf)


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
    model.asked = None
    model.nonfinite_run = 0 if np.isfinite(np.asarray(f, dtype=float)).any() else model.nonfinite_run + 1


def apply(action: str, es: es_ngd.NGDES, model: Model, config: dict, data: st.DataObject,
          directory: Path) -> es_ngd.NGDES:
    """Do ``action``; returns the strategy to go on with (a fresh one after a round trip)."""
    n = model.pending_rows
    pending = es._pending[2] if es._pending is not None else None
    if action == "ask":
        model.asked = es.ask()
        model.pending_rows = len(model.asked)
    elif action == "ask_n":
        size = data.draw(st.integers(2, 6), label="n")
        if size == 2 and es.options.mirrored:
            with pytest.raises(ValueError, match="mirrored"):
                es.ask(size)
            return es
        model.asked = es.ask(size)
        model.pending_rows = len(model.asked)
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
    elif action == "tell_edited_in_place":
        if model.asked is None:  # this ask came from a round trip's fresh strategy: ask again
            model.asked = es.ask()
            model.pending_rows = n = len(model.asked)
        X = model.asked  # the caller's array, edited where it lies
        row = data.draw(st.integers(0, n - 1), label="row")
        X[row] = data.draw(st.sampled_from([0.0, 1e3, -1e-3, math.nan]), label="value")
        before = es.state
        changed = not np.array_equal(X, es._pending[2], equal_nan=True)
        fitness = np.arange(n, dtype=float)
        if changed and (not es.options.accept_injected or not np.isfinite(X).all()):
            with pytest.raises(ValueError, match=r"ask|finite"):
                es.tell(X, fitness)
            assert es.state is before
        else:
            tell(es, model, X, fitness)
            assert es.state is not before
    elif action == "tell_all_nonfinite":
        values = data.draw(st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=n, max_size=n),
                           label="nonfinite")
        tell(es, model, pending, values)
    elif action == "crafted_checkpoint":
        path = directory / "crafted.npz"
        es.save(path)
        craft(path, data)
        with pytest.raises(es_ngd.CheckpointError):
            es_ngd.NGDES.load(path)
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


def craft(path: Path, data: st.DataObject) -> None:
    """Rewrite the checkpoint at ``path`` with one invalid value, keeping its checksum (then the
    checksum must catch it) or storing a valid arrays-only one (then validation must)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(arrays.pop(checkpoint.METADATA_KEY).tobytes().decode())
    if data.draw(st.booleans(), label="edit arrays"):
        edit = data.draw(st.sampled_from(CRAFTED_ARRAYS), label="array edit")
        factor = sorted(name for name in arrays if name.startswith("state/factor/"))[0]
        if edit == "nan_in_factor":
            arrays[factor] = np.where(np.arange(arrays[factor].size).reshape(arrays[factor].shape) == 0, np.nan,
                                      arrays[factor])
        elif edit == "singular_factor":
            arrays[factor] = np.zeros_like(arrays[factor])
        elif edit == "short_mean":
            arrays["state/mean"] = arrays["state/mean"][:-1]
        elif edit == "inf_in_mean":
            arrays["state/mean"] = np.full_like(arrays["state/mean"], np.inf)
        else:
            arrays["state/xbest"] = np.zeros(arrays["state/mean"].size + 1)
            metadata["state"]["xbest"] = {"__array__": "state/xbest"}
            metadata["state"]["fbest"] = 0.0
    else:
        keys, value = data.draw(st.sampled_from(CRAFTED), label="metadata edit")
        target = metadata
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    if data.draw(st.booleans(), label="legacy checksum"):
        metadata["checksum"] = checkpoint._checksum(arrays)
    arrays[checkpoint.METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


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


#: values a careless or hostile caller passes for any option
ADVERSARIAL = [None, True, False, 0, 1, -1, 2, 3, 0.5, -0.5, 1e300, -1e300, math.nan, math.inf, -math.inf, "a", "",
               "xnes", "raise", "csa", "float32", "cpu", (2, 2), [1, 1], (0, 1), np.float64(0.1), np.int64(5),
               1 + 2j, object()]


@settings(max_examples=1500, **SETTINGS)
@given(name=st.sampled_from(sorted(es_ngd.strategy.OPTION_NAMES)), value=st.sampled_from(ADVERSARIAL),
       generations=st.integers(1, 3))
def test_any_option_value_is_refused_by_name_or_gives_a_sound_run(name, value, generations):
    """At construction, an option value is either refused with a message that names the option, or the
    strategy runs (and stops) with the invariants intact."""
    try:
        es = es_ngd.NGDES(np.linspace(-1, 1, 4), 0.5, seed=1, **{name: value})
    except (TypeError, ValueError) as err:
        assert name in str(err), (name, value, err)
        return
    model = Model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(generations):
            if es.stop():
                break
            X = es.ask()
            model.pending_rows = len(X)
            tell(es, model, X, (np.asarray(X, dtype=float) ** 2).sum(1))
    check_invariants(es, model)
