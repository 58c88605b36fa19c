"""IPOP/BIPOP restarts, box constraints and re-evaluation of noisy objectives."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import es_ngd
from es_ngd.bounds import Bounds
from es_ngd.reevaluation import Reevaluated
from es_ngd.restarts import restart_seed


def rastrigin(X) -> np.ndarray:
    X = np.asarray(X)
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


def uniform_start(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-5, 5, 10)


# Measured (seeds 0-19, diag, sigma0 = 2.5, x0 ~ U[-5, 5]^10, each restart from a new start, CSA step size):
# IPOP reaches f < 1e-8 in 19/20 runs within 200k evaluations (20/20 within 400k; 20k-310k, popsizes up to 320;
# seeds 0-2: 56k-62k); a single run stops in a local minimum, f between 4 and 17, after 3.8k-5.1k evaluations.
# That was the first CSA; with sigma's trace term, seeds 0-5 all reach it within 200k (median 55k,
# benchmarks/results/step_size/trace_term/robust.txt), and with the per-group rank-one c1 too (median 43k,
# benchmarks/results/step_size/rank_one_rate/ipop_rastrigin.txt).
# (es_ngd 0.1's "xnes" step-size rule needed 49k-101k.)
RASTRIGIN = dict(structure="diag", vectorized=True, ftarget=1e-8, maxfevals=200_000)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ipop_solves_rastrigin_where_a_single_run_does_not(seed):
    single = es_ngd.optimize(rastrigin, uniform_start, 2.5, seed=seed, **RASTRIGIN)
    assert single.fbest > 1.0  # a local minimum: Rastrigin's are 1 apart near the optimum
    assert "ftarget" not in single.stop
    ipop = es_ngd.optimize(rastrigin, uniform_start, 2.5, seed=seed, restarts=9, **RASTRIGIN)
    assert ipop.fbest < 1e-8 and "ftarget" in ipop.stop
    assert ipop.evaluations <= 200_000
    runs = ipop.extra["runs"]
    assert [r.popsize for r in runs] == [10 * 2**i for i in range(len(runs))]  # IPOP: doubling
    assert sum(r.evaluations for r in runs) == ipop.evaluations
    assert runs[0].evaluations == single.evaluations and runs[0].fbest == single.fbest  # run 0 = plain run
    assert all("ftarget" not in r.stop for r in runs[:-1])


def test_restarts_are_reproducible_and_use_derived_seeds():
    kwargs = dict(seed=4, restarts=3, maxfevals=20_000, **{k: v for k, v in RASTRIGIN.items() if k != "maxfevals"})
    a = es_ngd.optimize(rastrigin, uniform_start, 2.5, **kwargs)
    b = es_ngd.optimize(rastrigin, uniform_start, 2.5, **kwargs)
    assert a.extra["runs"] == b.extra["runs"] and a.fbest == b.fbest
    seeds = [r.seed for r in a.extra["runs"]]
    assert seeds[0] == 4 and seeds == [restart_seed(4, i) for i in range(len(seeds))] and len(set(seeds)) == len(seeds)


def test_bipop_alternates_regimes_within_the_overall_budget(caplog):
    seen = []
    with caplog.at_level(logging.INFO, logger="es_ngd.restarts"):
        result = es_ngd.optimize(rastrigin, uniform_start, 2.5, seed=0, restarts=6, bipop=True, on_restart=seen.append,
                                 structure="diag", vectorized=True, maxfevals=60_000)
    runs = result.extra["runs"]
    assert seen == runs and len(caplog.records) == len(runs)
    assert "run 0 (first)" in caplog.records[0].getMessage()
    assert {r.regime for r in runs} == {"first", "large", "small"}
    large = [r.popsize for r in runs if r.regime == "large"]
    assert large == [10 * 2 ** (i + 1) for i in range(len(large))]
    for i, r in enumerate(runs):
        if r.regime == "small":  # small runs: population between default and last large, smaller sigma
            last_large = max([x.popsize for x in runs[:i] if x.regime == "large"])
            assert 10 <= r.popsize <= last_large and 0.025 <= r.sigma0 <= 2.5
    assert result.evaluations == sum(r.evaluations for r in runs)
    assert result.evaluations <= 60_000 + max(r.popsize for r in runs)  # the last generation may overshoot


def test_restarts_stop_at_the_target():
    result = es_ngd.optimize(lambda x: float((x**2).sum()), np.ones(4), 0.5, seed=1, restarts=5, ftarget=1e-10)
    assert len(result.extra["runs"]) == 1 and "ftarget" in result.stop


# -- bounds -----------------------------------------------------------------------------------------
LOWER, UPPER = np.zeros(6), np.ones(6)
TARGET = np.array([-1.0, 2.0, -0.5, 3.0, 0.5, 0.25])  # outside the box on four coordinates
OPTIMUM = np.clip(TARGET, LOWER, UPPER)  # on the boundary there
F_OPT = float(((OPTIMUM - TARGET) ** 2).sum())


@pytest.mark.parametrize("handling", ["transform", "penalty"])
@pytest.mark.parametrize("structure", ["diag", "dense"])
def test_every_candidate_is_feasible_and_the_boundary_optimum_is_found(handling, structure):
    seen = []

    def f(x):
        seen.append(np.array(x, copy=True))
        return float(((x - TARGET) ** 2).sum())

    result = es_ngd.optimize(f, np.full(6, 0.5), 0.3, structure=structure, seed=3, bounds=(LOWER, UPPER),
                             bound_handling=handling, ftarget=F_OPT + 1e-10, maxfevals=20_000)
    points = np.array(seen)
    assert len(points) == result.evaluations
    assert (points >= LOWER).all() and (points <= UPPER).all()
    assert result.fbest <= F_OPT + 1e-10, result
    assert np.abs(result.xbest - OPTIMUM).max() < 1e-5
    assert (result.xbest >= LOWER).all() and (result.xbest <= UPPER).all()
    assert (result.mean >= LOWER).all() and (result.mean <= UPPER).all()


def test_transform_is_the_identity_inside_and_always_feasible():
    bounds = Bounds([-1.0, 0.0, 10.0, -np.inf], [1.0, 5.0, 10.5, 0.0])
    rng = np.random.default_rng(0)
    wild = np.concatenate([rng.standard_normal((500, 4)) * 10.0 ** rng.integers(-2, 300, (500, 1)),
                           np.array([[1e308, -1e308, 0.0, 1e308]])])
    y = bounds.to_feasible(wild)
    assert np.isfinite(y).all() and (y >= bounds.lower).all() and (y <= bounds.upper).all()
    inner = np.array([[0.0, 2.5, 10.25, -5.0]])  # well inside every margin
    assert np.array_equal(bounds.to_feasible(inner), inner)
    feasible = bounds.to_feasible(rng.standard_normal((200, 4)) * 3)
    assert np.allclose(bounds.to_feasible(bounds.to_internal(feasible)), feasible, atol=1e-12)
    # continuity at the edges of the margins (a smooth map, not a clip)
    x = np.linspace(-3, 3, 20001)[:, None] * np.ones(4)
    assert np.abs(np.diff(bounds.to_feasible(x), axis=0)).max() <= 3e-4 * 1.0001


def test_bounds_on_torch_candidates_stay_tensors():
    torch = pytest.importorskip("torch")

    def f(x):
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float64
        assert bool((x >= 0).all()) and bool((x <= 1).all())
        return float(((x - torch.as_tensor(TARGET)) ** 2).sum())

    # seed 2: with the CSA step size, 9 of seeds 1-10 reach the target on this problem (numpy, measured); seed 1
    # stalls when one coordinate's internal variance grows past the transform's period (penalty: 10 of 10)
    result = es_ngd.optimize(f, np.full(6, 0.5), 0.3, backend="torch", seed=2, bounds=(LOWER, UPPER),
                             ftarget=F_OPT + 1e-8)
    assert result.fbest <= F_OPT + 1e-8 and isinstance(result.xbest, np.ndarray)


@pytest.mark.parametrize(("lower", "upper", "message"), [
    ([0, 0], [1, 0], "below its upper"),
    ([0, 2], [1, 1], "below its upper"),
    ([0, np.nan], [1, 1], "NaN"),
    ([0, 0, 0], [1, 1, 1], "length"),
    (np.inf, np.inf, "below its upper"),
])
def test_bad_bounds_raise(lower, upper, message):
    with pytest.raises(ValueError, match=message):
        es_ngd.optimize(lambda x: 0.0, np.zeros(2), 0.1, bounds=(lower, upper), maxiter=1)


def test_bad_bound_arguments_raise():
    with pytest.raises(ValueError, match="outside the bounds"):
        es_ngd.optimize(lambda x: 0.0, np.full(2, 3.0), 0.1, bounds=(0, 1), maxiter=1)
    with pytest.raises(ValueError, match="handling"):
        Bounds(0, 1, handling="clip")
    with pytest.raises(TypeError, match="pair"):
        es_ngd.optimize(lambda x: 0.0, np.zeros(2), 0.1, bounds=[0, 1, 2], maxiter=1)


# -- noisy objectives -------------------------------------------------------------------------------
def test_reevaluations_average_and_are_counted_as_calls_of_f():
    rng = np.random.default_rng(0)
    calls = []

    def noisy_sphere(x):
        calls.append(1)
        return float((x**2).sum() + rng.normal(0.0, 1e-3))

    result = es_ngd.optimize(noisy_sphere, np.ones(5), 0.5, seed=2, reevaluations=4, maxfevals=2_000)
    assert result.evaluations == len(calls) and result.evaluations % 4 == 0
    assert 2_000 <= result.evaluations < 2_000 + 4 * 9  # the budget counts calls of f
    assert result.stop == {"maxfevals": 2_000}


def test_reevaluation_divides_the_noise_variance_by_k():
    rng = np.random.default_rng(1)

    class NoiseOnly:
        def evaluate(self, population):
            return rng.normal(0.0, 1.0, len(population))

        def close(self):
            pass

    es = es_ngd.NGDES(np.zeros(3), 1.0, popsize=4000, seed=0)
    population = es.ask_population()
    for k in (1, 4, 16):
        variance = Reevaluated(NoiseOnly(), k).evaluate(population).var()
        assert variance == pytest.approx(1.0 / k, rel=0.1)
    with pytest.raises(ValueError, match="reevaluations"):
        es_ngd.optimize(lambda x: 0.0, np.zeros(2), 0.1, reevaluations=0)
