"""Regression tests for the hardening issue: one (or a few) per numbered item, each failing before the fix.

Items: 1 in-place edits of asked arrays, 2 all-non-finite runs, 3 scalar and None bounds, 4 complex,
None, boolean and masked fitness, 5 option validation, 6 mirrored pairs of two, 7 raw shaping of huge
values, 8 objectives returning the wrong kind of value, 9 crafted checkpoint metadata, 10
``RayEvaluator.evaluate(array)`` and ``optimize(workers=N)``'s Ray options, 11 small triangular
solves without scipy's threads; then pycma's habits (result fields, options dict, verbose).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import re
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import es_ngd
from es_ngd import checkpoint


def sphere(x: np.ndarray) -> float:
    return float((x * x).sum())


def clipped_sphere(x: np.ndarray) -> float:
    return sphere(np.clip(x, -0.1, 0.1))


# -- 1: in-place edits -------------------------------------------------------------------------------
def test_an_asked_array_edited_in_place_is_refused_and_changes_nothing() -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, seed=1)
    X = es.ask()
    before = es.state
    X[:] = 100.0
    with pytest.raises(ValueError, match="not those of the last ask"):
        es.tell(X, [sphere(x) for x in X])
    assert es.state is before and es.state.xbest is None


def test_an_edited_array_is_told_as_injected_points_with_accept_injected() -> None:
    edited, copied = (es_ngd.NGDES(np.ones(4), 0.5, seed=1, accept_injected=True) for _ in range(2))
    X = edited.ask()
    X[0] = 0.0  # the optimum, which the strategy did not sample, written into the asked array itself
    Y = np.array(copied.ask(), copy=True)
    Y[0] = 0.0  # the same point, injected through a copy
    f = [sphere(x) for x in X]
    edited.tell(X, f)
    copied.tell(Y, f)
    np.testing.assert_array_equal(edited.result.xbest, np.zeros(4))  # the told point, not the asked row
    np.testing.assert_array_equal(edited.mean, copied.mean)  # its noise was recomputed from it in both
    assert edited.sigma == copied.sigma


def test_the_populations_own_rows_are_read_only() -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, seed=1)
    rows = es.ask_population().candidates()
    with pytest.raises(ValueError, match="read-only"):
        rows[0] = 0.0


@pytest.mark.parametrize("vectorized", [False, True])
def test_an_objective_that_edits_its_argument_cannot_corrupt_the_population(vectorized: bool) -> None:
    def editing(x: np.ndarray):
        x[...] = np.clip(x, -0.1, 0.1)  # what a careless objective does
        return (x * x).sum(-1) if vectorized else sphere(x)

    def pure(x: np.ndarray):
        y = np.clip(x, -0.1, 0.1)
        return (y * y).sum(-1) if vectorized else sphere(y)

    edited = es_ngd.optimize(editing, np.ones(3), 0.5, seed=3, maxiter=20, vectorized=vectorized)
    reference = es_ngd.optimize(pure, np.ones(3), 0.5, seed=3, maxiter=20, vectorized=vectorized)
    np.testing.assert_array_equal(edited.xbest, reference.xbest)  # a sampled point, not its clipped image
    np.testing.assert_array_equal(edited.mean, reference.mean)
    assert edited.fbest == reference.fbest


# -- 2: nothing finite -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("f", "sigma0"), [(lambda x: float("nan"), 1.0), (sphere, 1e308)])
def test_a_run_without_a_finite_value_stops_and_says_so(f, sigma0: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = es_ngd.optimize(f, np.zeros(3), sigma0, seed=1, maxiter=500)  # maxiter: fail, not hang, if broken
    assert "nonfinite" in result.stop and "NaN or inf" in result.stop["nonfinite"]
    assert result.iterations == es_ngd.Options().tolnonfinite
    assert result.xbest is None and result.fbest == math.inf


def test_a_finite_generation_resets_the_nonfinite_count() -> None:
    es = es_ngd.NGDES(np.zeros(3), 1.0, seed=1, tolnonfinite=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for values in ([math.nan] * 7, [1.0] + [math.nan] * 6, [math.inf] * 7):
            X = es.ask()
            es.tell(X, values)
            assert "nonfinite" not in es.stop()
        X = es.ask()
        es.tell(X, [math.nan] * 7)
    assert "nonfinite" in es.stop()


# -- 3: bounds -------------------------------------------------------------------------------------------
def test_scalar_bounds_broadcast_in_ask_tell_as_in_optimize() -> None:
    bounds = es_ngd.Bounds(-1.0, 1.0)
    np.testing.assert_array_equal(bounds.to_internal(np.zeros(5)), np.zeros(5))
    assert np.all(np.abs(bounds.to_feasible(np.full((3, 5), 7.0))) <= 1.0)


def test_none_is_a_free_side_of_the_box() -> None:
    seen = []

    def f(x: np.ndarray) -> float:
        seen.append(x.copy())
        return sphere(x - 1.0)

    result = es_ngd.optimize(f, np.zeros(3), 0.5, seed=1, bounds=[None, 0.5], maxiter=30)
    assert np.max(seen) <= 0.5 and np.min(seen) < -0.5  # the upper side holds, the lower one is free
    assert result.xbest.max() <= 0.5
    assert es_ngd.Bounds([None, 0.0], [1.0, None]).to_internal(np.array([-5.0, 5.0])).shape == (2,)


# -- 4: fitness types ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fitness", "message"), [
    (lambda n: np.ones(n) + 5j, "complex"),
    (lambda n: [None] * n, "None"),
    (lambda n: [1.0] * (n - 1) + [None], "None"),
    (lambda n: np.ones(n, dtype=bool), "boolean"),
    (lambda n: ["1.0"] * n, "real numbers"),
    (lambda n: np.ma.masked_array(np.ones(n), mask=[True] + [False] * (n - 1)), "masked"),
])
def test_tell_refuses_fitness_that_is_not_real(fitness, message: str) -> None:
    es = es_ngd.NGDES(np.ones(3), 0.5, seed=1)
    X = es.ask()
    before = es.state
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way either
        with pytest.raises(TypeError, match=message):
            es.tell(X, fitness(len(X)))
    assert es.state is before
    es.tell(X, [sphere(x) for x in X])  # the pending ask can still be answered


@pytest.mark.parametrize("vectorized", [False, True])
def test_an_objective_returning_complex_values_is_refused(vectorized: bool) -> None:
    def f(x):
        return (x * x).sum(-1) + 0j if vectorized else np.complex128(sphere(x))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="complex"):
            es_ngd.optimize(f, np.ones(3), 0.5, seed=1, maxiter=2, vectorized=vectorized)


# -- 5: options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"tolx": "a"}, {"maxfevals": math.nan}, {"maxfevals": -1}, {"tolfun": -1}, {"mirrored": "yes"},
    {"maxiter": 0}, {"ftarget": math.nan}, {"max_condition": 0.5}, {"tolstagnation": 2.5},
    {"tolflatfitness": -1}, {"tolnonfinite": 0}, {"lr_mean": True}, {"lr_sigma": "0.1"}, {"entropy_weight": -1.0},
    {"accept_injected": 1}, {"rank_one": "no"}, {"step_size": "cma"}, {"dtype": "int64"}, {"device": 3},
    {"shape": (2, 0)}, {"verbose": "loud"}, {"nonfinite": None}, {"shaping": 3},
])
def test_every_bad_option_is_refused_at_construction_naming_it(bad: dict) -> None:
    (name, value), = bad.items()
    with pytest.raises(ValueError, match=rf"option {name} must be .*, got {re.escape(repr(value))}"):
        es_ngd.NGDES(np.zeros(3), 1.0, **bad)
    with pytest.raises(ValueError, match=f"option {name}"):  # and before optimize starts anything
        es_ngd.optimize(sphere, np.zeros(3), 1.0, **bad)


def test_every_option_has_a_check() -> None:
    from es_ngd.options import _OPTION_CHECKS, OPTION_NAMES

    assert set(_OPTION_CHECKS) == OPTION_NAMES
    defaults = es_ngd.Options()
    for name, (accepts, _) in _OPTION_CHECKS.items():
        assert accepts(getattr(defaults, name)), name


@pytest.mark.parametrize("sigma0", [True, np.bool_(True)])
def test_a_boolean_sigma0_is_refused(sigma0) -> None:
    with pytest.raises(TypeError, match="sigma0"):
        es_ngd.NGDES(np.zeros(3), sigma0)


# -- 6: mirrored pairs -----------------------------------------------------------------------------------
def test_a_single_mirrored_pair_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"mirrored=True needs a population size >= 3.*cancel"):
        es_ngd.NGDES(np.ones(4), 0.5, popsize=2, mirrored=True)
    es = es_ngd.NGDES(np.ones(4), 0.5, popsize=4, mirrored=True, seed=1)
    with pytest.raises(ValueError, match="mirrored"):
        es.ask(2)


# -- 7: raw shaping of huge values -----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e308, 1e-320])
def test_raw_shaping_handles_values_at_the_ends_of_the_float_range(scale: float) -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, popsize=8, seed=1, shaping="raw")
    X = es.ask()
    f = scale * np.array([1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.25, 0.0])
    mean = np.array(es.mean, copy=True)
    es.tell(X, f)
    assert not np.array_equal(es.mean, mean)  # a real step, not a zero one
    utilities = es_ngd.shaping.raw_baseline(f)
    np.testing.assert_allclose(utilities, es_ngd.shaping.raw_baseline(f / scale), rtol=1e-12, atol=1e-15)


# -- 8: objectives returning the wrong kind of value -----------------------------------------------------
@pytest.mark.parametrize(("returned", "message"), [
    (lambda x: np.array([1.0, 2.0]), r"ndarray of shape \(2,\) for candidate 0.*vectorized=True"),
    (lambda x: [1.0], r"list of shape \(1,\) for candidate 0.*vectorized=True"),
    (lambda x: None, "returned None for candidate 0"),
    (lambda x: "1.0", "returned '1.0'"),
])
def test_an_objective_returning_no_number_gets_a_message_that_says_what_it_returned(returned, message) -> None:
    with pytest.raises(TypeError, match=message):
        es_ngd.optimize(returned, np.ones(3), 0.5, seed=1, maxiter=2)


def test_a_vectorised_objective_returning_one_number_is_told_what_to_return() -> None:
    with pytest.raises(ValueError, match=r"returned 1 values for 7 candidates.*returns n values"):
        es_ngd.optimize(lambda X: 1.0, np.ones(3), 0.5, seed=1, maxiter=2, vectorized=True)


# -- 9: checkpoint metadata ------------------------------------------------------------------------------
def _saved(tmp_path: Path) -> Path:
    es = es_ngd.NGDES(np.ones(4), 0.5, structure="dense", seed=1)
    for _ in range(3):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
    return checkpoint.save(es, tmp_path / "run.npz")


def _rewrite(path: Path, edit, *, checksum: str = "keep") -> None:
    """Rewrite the archive with ``edit(metadata, arrays)`` applied; ``checksum``: keep the stored one,
    "legacy" to store a valid arrays-only checksum (what a file from before the fix would carry), or
    "valid" to store a correct checksum of the edited arrays and metadata."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(arrays.pop(checkpoint.METADATA_KEY).tobytes().decode())
    edit(metadata, arrays)
    if checksum == "legacy":
        metadata["checksum"] = checkpoint._checksum(arrays)
    elif checksum == "valid":  # someone who recomputed the checksum after editing
        metadata["checksum"] = checkpoint._checksum(arrays, metadata)
    arrays[checkpoint.METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _set(*keys: str, value) -> Callable[[dict, dict], None]:
    def edit(metadata: dict, arrays: dict) -> None:
        target = metadata
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def test_the_checksum_covers_the_metadata(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _rewrite(path, _set("state", "sigma", value=123.0))
    with pytest.raises(es_ngd.CheckpointError, match="checksum mismatch"):
        es_ngd.NGDES.load(path)


def _as_format_1(metadata: dict, arrays: dict) -> None:
    """What es_ngd 0.1 wrote: format 1, no step-size controller state, no step_size/rank_one options."""
    metadata["format_version"] = 1
    del metadata["state"]["step_size"], metadata["state"]["evolution_path"]
    del metadata["options"]["step_size"], metadata["options"]["rank_one"]


def test_a_legacy_arrays_only_checksum_still_loads(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    reference = es_ngd.NGDES.load(path)
    _rewrite(path, _as_format_1, checksum="legacy")
    with pytest.warns(UserWarning, match="no step-size controller state"):
        loaded = es_ngd.NGDES.load(path)
    assert loaded.state.sigma == reference.state.sigma
    np.testing.assert_array_equal(loaded.ask(), reference.ask())


def test_a_format_2_file_with_an_arrays_only_checksum_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _rewrite(path, _set("state", "sigma", value=123.0), checksum="legacy")
    with pytest.raises(checkpoint.CheckpointError, match="must carry a checksum of its metadata"):
        es_ngd.NGDES.load(path)


def _nan_factor(metadata: dict, arrays: dict) -> None:
    arrays["state/factor/B"] = arrays["state/factor/B"].copy()
    arrays["state/factor/B"][0, 0] = np.nan


def _short_xbest(metadata: dict, arrays: dict) -> None:
    arrays["state/xbest"] = arrays["state/xbest"][:2]


@pytest.mark.parametrize(("edit", "message"), [
    (_set("popsize", value=1e12), "population size"),
    (_set("popsize", value=10**12), "population size"),
    (_short_xbest, "xbest must be 4 finite numbers"),
    (_nan_factor, "factor array 'B' must hold finite"),
    (_set("state", "sigma", value=-1.0), "sigma0? must be a positive"),
    (_set("state", "sigma", value="1"), "sigma0? must be"),
    (_set("state", "fbest", value=None), "fbest"),
    (_set("state", "iterations", value=10**6), "counters contradict"),
    (_set("termination", "recent_best", value=["x"]), "termination entry recent_best"),
    (_set("termination", "flat_generations", value=-3), "termination counters"),
    (_set("numerical_error", value=5), "numerical_error"),
    (_set("options", "tolx", value="a"), "option tolx"),
])
def test_crafted_metadata_with_a_valid_checksum_is_refused_on_load(tmp_path: Path, edit, message: str) -> None:
    path = _saved(tmp_path)
    _rewrite(path, edit, checksum="valid")
    with pytest.raises(es_ngd.CheckpointError, match=message):
        es_ngd.NGDES.load(path)


def test_load_state_dict_checks_the_values_itself() -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, seed=1)
    X = es.ask()
    es.tell(X, [sphere(x) for x in X])
    for key, value, message in [("sigma", "1", "sigma must be positive"), ("xbest", np.ones(3), "xbest"),
                                ("mean", np.full(4, np.inf), "mean")]:
        sd = es.state_dict()
        sd["state"][key] = value
        fresh = es_ngd.NGDES(np.ones(4), 0.5, seed=2)
        before = fresh.state
        with pytest.raises(es_ngd.CheckpointError, match=message):
            fresh.load_state_dict(sd)
        assert fresh.state is before
    sd = es.state_dict()
    sd["popsize"] = 1e12
    with pytest.raises(es_ngd.CheckpointError, match="popsize must be an integer"):
        es_ngd.NGDES(np.ones(4), 0.5).load_state_dict(sd)


def test_a_singular_factor_is_refused_on_load(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _rewrite(path, lambda metadata, arrays: arrays.__setitem__("state/factor/B", np.zeros((4, 4))), checksum="legacy")
    with pytest.raises(es_ngd.CheckpointError, match="singular"):
        es_ngd.NGDES.load(path)


def test_the_archive_still_holds_no_pickles(tmp_path: Path) -> None:
    with zipfile.ZipFile(_saved(tmp_path)) as archive:
        for name in archive.namelist():
            header = archive.read(name)[:128]
            assert b"'descr'" in header and b"|O" not in header


# -- 10: Ray ---------------------------------------------------------------------------------------------
def test_ray_evaluate_takes_an_array_and_optimize_takes_ray_options_and_reuses_ray() -> None:
    ray = pytest.importorskip("ray")
    from es_ngd.evaluators import EVALUATOR_OPTIONS
    from es_ngd.evaluators.ray import RayEvaluator

    parameters = set(inspect.signature(RayEvaluator).parameters) - {"f", "num_workers", "vectorized"}
    assert parameters == EVALUATOR_OPTIONS
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if ray.is_initialized():
        ray.shutdown()
    try:
        result = es_ngd.optimize(sphere, np.ones(3), 0.5, seed=1, maxiter=2, workers=1, num_cpus=0.5,
                                 timeout=30.0, on_error="rank_last",
                                 ray_init={"num_cpus": 2, "include_dashboard": False, "log_to_driver": False})
        assert result.iterations == 2 and ray.is_initialized()  # kept for the next call
        es = es_ngd.NGDES(np.ones(3), 0.5, seed=1)
        X = es.ask()
        with RayEvaluator(sphere, num_workers=1, num_cpus=0.5) as evaluator:
            np.testing.assert_array_equal(evaluator.evaluate(X), [sphere(x) for x in X])
            with pytest.raises(TypeError, match=r"ask_population\(\)"):
                evaluator.evaluate("rows")
        assert ray.is_initialized()  # it did not start Ray, so it does not stop it
        with pytest.raises(TypeError, match="need workers=N"):
            es_ngd.optimize(sphere, np.ones(3), 0.5, timeout=1.0)
    finally:
        ray.shutdown()


# -- 11: small triangular solves -------------------------------------------------------------------------
@pytest.mark.parametrize("structure", ["tril", "triu"])
def test_small_triangular_groups_do_not_call_scipy(structure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    b = np.tril(rng.standard_normal((8, 8))) + 3 * np.eye(8)
    z = rng.standard_normal((5, 8))
    reference = scipy_linalg.solve_triangular(b, z.T, trans="T", lower=True)
    reference_left = scipy_linalg.solve_triangular(b, z.T, lower=True)
    backend = es_ngd.get_backend("numpy")

    def refuse(*args, **kwargs):
        raise AssertionError("scipy's threaded trsm was called for an 8 x 8 system")

    monkeypatch.setattr(scipy_linalg, "solve_triangular", refuse)
    np.testing.assert_allclose(backend.solve_triangular(b, z, lower=True, left=False), reference.T, rtol=1e-13)
    np.testing.assert_allclose(backend.solve_triangular(b, z.T, lower=True), reference_left, rtol=1e-13)
    es = es_ngd.NGDES(np.ones(8), 0.5, structure=structure, seed=1)
    for _ in range(3):
        X = es.ask()
        es.tell(X, (X * X).sum(1))
        es.stop()
    assert es.result.stds.shape == (8,)


# -- pycma's habits --------------------------------------------------------------------------------------
def test_result_has_pycmas_fields() -> None:
    es = es_ngd.NGDES(np.ones(4), 0.5, structure="dense", seed=1)
    for _ in range(5):
        X = es.ask()
        es.tell(X, [sphere(x) for x in X])
    result = es.result
    assert result.xfavorite is result.mean
    np.testing.assert_allclose(result.stds, np.sqrt(np.diag(es.covariance())), rtol=1e-10)
    assert 0 < result.evals_best <= result.evaluations
    X, f = es.ask(), None
    f = [sphere(x) for x in X]
    es.tell(X, f)
    if min(f) < result.fbest:  # evals_best counts the candidate itself
        assert es.result.evals_best == result.evaluations + int(np.argmin(f)) + 1
    loaded = es_ngd.NGDES(np.ones(4), 0.5, structure="dense")
    loaded.load_state_dict(es.state_dict())
    assert loaded.result.evals_best == es.result.evals_best
    assert dataclasses.replace(result, mean=np.zeros(4)).xfavorite.tolist() == [0.0] * 4


def test_pycmas_options_dict_as_third_argument() -> None:
    es = es_ngd.NGDES(np.zeros(3), 1.0, {"popsize": 10, "seed": 4, "tolx": 1e-3, "structure": "dense"})
    assert es.popsize == 10 and es.seed == 4 and es.options.tolx == 1e-3 and es.group.structure == "dense"
    with pytest.raises(TypeError, match=r"unknown option.*CMA_mirrors"):
        es_ngd.NGDES(np.zeros(3), 1.0, {"CMA_mirrors": True})
    with pytest.raises(TypeError, match="both"):
        es_ngd.NGDES(np.zeros(3), 1.0, {"tolx": 1e-3}, tolx=1e-4)


def test_verbose_prints_a_pycma_like_line(capsys: pytest.CaptureFixture[str]) -> None:
    es_ngd.optimize(sphere, np.ones(3), 0.5, seed=1, maxiter=5)
    assert capsys.readouterr().out == ""  # quiet by default
    es_ngd.optimize(sphere, np.ones(3), 0.5, seed=1, maxiter=5, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iterat #Fevals") and len(lines) == 4  # header, iterations 1, 2, 3
    assert lines[1].split()[:2] == ["1", "7"]

