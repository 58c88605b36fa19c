"""The ask/tell strategy: convergence within stated budgets, learned correlations, backends, API."""

from __future__ import annotations

import numpy as np
import pytest
from problems import (
    diagonal_minus_low_rank_hessian,
    ellipsoid,
    quadratic,
    rosenbrock,
    rotated_ellipsoid_hessian,
    sphere,
)

import es_ngd


def rotated_ellipsoid(x: np.ndarray) -> float:
    return quadratic(ROTATED_ELLIPSOID_HESSIAN[len(x)])(x)


ROTATED_ELLIPSOID_HESSIAN = {10: rotated_ellipsoid_hessian(10, 1e6, seed=4)}

# (structure, problem, p, budget in evaluations, what the "xnes" rule needed, seeds 1 and 2): each must
# reach f < 1e-8 within its budget with the defaults (step_size="csa" plus the trace term at SNES's rate,
# rank_one=True), which measured (seeds 1, 2): dense 1020/940, 3310/3280, 3780/3520, 5100/4720, 3180/3120;
# diag 1010/970, 3240/3450, 5730/5670; up:2 3375/3390, 14220/12900. es_ngd 0.2's trace term at η_σ = η_B needed
# dense 1380/1190, 3770/3410, 3480/3590, 5580/5310, 3735/3870 and up:2 3645/3720, 14805/14760 (diag: the same,
# its η_B is SNES's rate): the budgets of PREVIOUS_SIGMA_RATE_MISSES are below those. The first CSA (without
# the trace term, damping 1) needed dense 1740/1820, 4170/3990, 3860/3850, 6460/5560, 4695/4785; diag
# 5070/5025, 8040/7740; up:2 4965/4770, 19410/19005. Every budget is one that the "xnes" rule misses.
CONVERGENCE = [
    ("dense", "sphere", 10, 1_150, 5_600),
    ("dense", "ellipsoid", 10, 3_600, 8_280),
    ("dense", "rotated-ellipsoid", 10, 4_200, 8_170),
    ("dense", "rosenbrock", 10, 5_600, 9_900),
    ("dense", "sphere", 40, 3_500, 111_840),
    ("diag", "sphere", 10, 1_100, None),
    ("diag", "sphere", 40, 4_300, 8_640),
    ("diag", "ellipsoid", 40, 7_600, 12_075),
    ("up:2", "sphere", 40, 3_600, 36_315),
    ("up:2", "ellipsoid", 40, 16_000, 52_020),
]
#: the budgets above that es_ngd 0.2's σ rate (the trace term at η_σ = η_B) misses with seed 1
PREVIOUS_SIGMA_RATE_MISSES = [("dense", "sphere", 10), ("dense", "sphere", 40), ("up:2", "sphere", 40)]
PROBLEMS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock, "rotated-ellipsoid": rotated_ellipsoid}


@pytest.mark.parametrize(("structure", "problem", "p", "budget", "xnes_needed"), CONVERGENCE)
@pytest.mark.parametrize("seed", [1, 2])
def test_converges_within_budget(structure: str, problem: str, p: int, budget: int, xnes_needed: int | None,
                                 seed: int) -> None:
    result = es_ngd.optimize(PROBLEMS[problem], np.full(p, 0.5), 0.5, structure=structure, seed=seed,
                             ftarget=1e-8, maxfevals=budget)
    assert result.fbest < 1e-8, (result.fbest, result.stop)
    assert result.evaluations <= budget
    assert "ftarget" in result.stop


@pytest.mark.parametrize(("structure", "problem", "p", "budget"),
                         [(s, f, p, b) for s, f, p, b, xnes in CONVERGENCE if xnes is not None])
def test_the_xnes_rule_misses_those_budgets(structure: str, problem: str, p: int, budget: int) -> None:
    """The budgets above are tighter than what es_ngd 0.1's σ rule (step_size="xnes") can do."""
    result = es_ngd.optimize(PROBLEMS[problem], np.full(p, 0.5), 0.5, structure=structure, seed=1,
                             ftarget=1e-8, maxfevals=budget, step_size="xnes", rank_one=False)
    assert result.fbest > 1e-8


@pytest.mark.parametrize(("structure", "problem", "p"), PREVIOUS_SIGMA_RATE_MISSES)
def test_the_previous_sigma_rate_misses_those_budgets(structure: str, problem: str, p: int) -> None:
    """σ's trace term at SNES's rate is what meets them: at es_ngd 0.2's η_σ = η_B the same run falls short."""
    budget = next(b for s, f, q, b, _ in CONVERGENCE if (s, f, q) == (structure, problem, p))
    eta_b = es_ngd.NGDES(np.full(p, 0.5), 0.5, structure=structure).rates.factor
    result = es_ngd.optimize(PROBLEMS[problem], np.full(p, 0.5), 0.5, structure=structure, seed=1,
                             ftarget=1e-8, maxfevals=budget, lr_sigma=eta_b)
    assert result.fbest > 1e-8


def test_diag_on_a_rotated_ellipsoid_keeps_its_condition_number_bounded() -> None:
    """With σ decoupled, diag's variances no longer run away on a non-separable problem (they did with the xnes
    rule: condition numbers from 1e5 to the 1e14 limit while f was far from optimal); the run ends by its budget."""
    hessian = rotated_ellipsoid_hessian(20, 1e6, seed=3)
    es = es_ngd.NGDES(np.ones(20), 0.5, structure="diag", seed=1, maxfevals=40_000)
    f = quadratic(hessian)
    worst = 0.0
    while not es.stop():
        X = es.ask()
        es.tell(X, [f(x) for x in X])
        worst = max(worst, es.group.condition_number(es.state.factor))
    assert "condition" not in es.stop()
    assert worst < 1e4, worst


def test_up2_learns_a_diagonal_plus_rank_two_covariance() -> None:
    hessian = diagonal_minus_low_rank_hessian(30, 2, seed=0, strength=(2, 3))  # condition 5.9e3
    budget = 100_000  # measured: f = 3.9e-8 (seed 1) and 1.5e-8 (seed 2) at this budget; diag 2.7e-5, 3.2e-5
    result = es_ngd.optimize(quadratic(hessian), np.ones(30), 0.5, structure="up:2", seed=1, maxfevals=budget)
    assert result.fbest < 1e-7, (result.fbest, result.stop)
    # the diagonal group, blind to the rank-2 term, is far behind with the same budget
    blind = es_ngd.optimize(quadratic(hessian), np.ones(30), 0.5, structure="diag", seed=1, maxfevals=budget)
    assert blind.fbest > 1e-6


def _alignment(cov: np.ndarray, hessian: np.ndarray) -> float:
    """Condition number of H^{1/2} C H^{1/2}: 1 when C ∝ H⁻¹, cond(H) when C ∝ I."""
    w, v = np.linalg.eigh(hessian)
    root = v @ np.diag(np.sqrt(w)) @ v.T
    return float(np.linalg.cond(root @ cov @ root))


@pytest.mark.parametrize("structure", ["dense", "tril"])
def test_correlations_are_learned_on_a_rotated_ellipsoid(structure: str) -> None:
    hessian = rotated_ellipsoid_hessian(10, 1e4, seed=4)
    es = es_ngd.NGDES(np.ones(10), 0.5, structure=structure, seed=1, ftarget=1e-8, maxfevals=15_000)
    f = quadratic(hessian)
    while not es.stop():
        x = es.ask()
        es.tell(x, [f(v) for v in x])
    assert es.result.fbest < 1e-8, es.stop()
    assert _alignment(es.covariance(), hessian) < 10.0  # the inverse Hessian is learned, rotation included


def test_a_diagonal_factor_cannot_align_with_a_rotated_hessian() -> None:
    """Control for the test above: an update that leaves B diagonal (the element-wise bug of
    MATH.md §7) stays far from the inverse Hessian, so the alignment criterion catches it."""
    hessian = rotated_ellipsoid_hessian(10, 1e4, seed=4)
    es = es_ngd.NGDES(np.ones(10), 0.5, structure="diag", seed=1, maxfevals=15_000)
    f = quadratic(hessian)
    while not es.stop():
        x = es.ask()
        es.tell(x, [f(v) for v in x])
    assert _alignment(es.covariance(), hessian) > 100.0


@pytest.mark.parametrize("step_size", ["csa", "tpa", "xnes"])
@pytest.mark.parametrize("structure", ["dense", "diag", "tril", "triu", "up:2", "low:2"])
def test_numpy_and_torch_trajectories_agree(structure: str, step_size: str) -> None:
    runs = [es_ngd.NGDES(np.linspace(-1, 1, 7), 0.6, structure=structure, seed=9, backend=backend,
                         step_size=step_size, rank_one=step_size != "xnes")
            for backend in ("numpy", "torch")]
    for _ in range(25):
        xs = [np.asarray(es.backend.to_numpy(es.ask())) for es in runs]
        np.testing.assert_allclose(xs[1], xs[0], rtol=1e-10, atol=1e-12)
        f = [rosenbrock(x) for x in xs[0]]
        for es in runs:
            es.tell(es._pending[2], f)
    np.testing.assert_allclose(runs[1].backend.to_numpy(runs[1].mean), runs[0].mean, rtol=1e-10)
    assert runs[1].sigma == pytest.approx(runs[0].sigma, rel=1e-10)


def test_torch_backend_returns_tensors_and_accepts_them() -> None:
    torch = pytest.importorskip("torch")
    es = es_ngd.NGDES(np.zeros(4), 1.0, structure="up:1", seed=0, backend="torch")
    x = es.ask()
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float64
    es.tell(x, (x**2).sum(1))
    assert es.state.evaluations == es.popsize


def test_same_seed_same_run_and_different_seed_different_run() -> None:
    def run(seed: int) -> np.ndarray:
        return es_ngd.optimize(sphere, np.ones(5), 1.0, seed=seed, maxiter=20).mean

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_mirrored_sampling_pairs_candidates() -> None:
    es = es_ngd.NGDES(np.full(6, 2.0), 0.5, structure="dense", seed=1, mirrored=True, popsize=8)
    x = es.ask()
    np.testing.assert_allclose(x[0::2] + x[1::2], 2 * np.full((4, 6), 2.0))
    result = es_ngd.optimize(sphere, np.full(6, 2.0), 0.5, seed=1, mirrored=True, ftarget=1e-8, maxfevals=5000)
    assert result.fbest < 1e-8


@pytest.mark.parametrize("shaping", ["xnes", "centered_ranks", "raw"])
def test_every_fitness_shaping_converges(shaping: str) -> None:
    result = es_ngd.optimize(sphere, np.ones(5), 0.5, seed=2, shaping=shaping, ftarget=1e-8, maxfevals=10_000)
    assert result.fbest < 1e-8, (shaping, result.stop)


def test_vectorized_objective_and_callback() -> None:
    seen = []

    def callback(es: es_ngd.NGDES) -> bool:
        seen.append(es.state.iterations)
        return es.state.iterations >= 5

    result = es_ngd.optimize(lambda x: (x**2).sum(1), np.ones(4), 1.0, seed=0, vectorized=True, callback=callback)
    assert seen == [1, 2, 3, 4, 5]
    assert result.stop.get("callback") is True
    assert result.iterations == 5


def test_termination_reasons() -> None:
    assert "maxiter" in es_ngd.optimize(sphere, np.ones(3), 1.0, seed=0, maxiter=7).stop
    r = es_ngd.optimize(sphere, np.ones(3), 1.0, seed=0, maxfevals=50)
    assert "maxfevals" in r.stop and r.evaluations >= 50
    # left alone, sphere runs until σ·std or the recent range of f is tiny
    r = es_ngd.optimize(sphere, np.ones(3), 1.0, seed=0)
    assert {"tolx", "tolfun"} & set(r.stop), r.stop
    es = es_ngd.NGDES(np.ones(3), 1.0, seed=0, tolx=1e-3, tolfun=0.0)
    while not es.stop():
        x = es.ask()
        es.tell(x, [sphere(v) for v in x])
    assert "tolx" in es.stop()
    assert es.sigma * np.sqrt(np.diag(es.covariance())).max() / es.sigma < 1e-3 / es.sigma


def test_flat_fitness_stops_without_moving() -> None:
    es = es_ngd.NGDES(np.ones(4), 1.0, seed=0)
    for _ in range(2):
        x = es.ask()
        es.tell(x, np.zeros(len(x)))
    np.testing.assert_array_equal(es.mean, np.ones(4))
    assert es.sigma == 1.0
    assert "tolflatfitness" in es.stop()


def test_result_fields() -> None:
    r = es_ngd.optimize(sphere, np.ones(3), 1.0, seed=0, maxiter=30)
    assert r.iterations == 30 and r.evaluations == 30 * 7
    assert r.xbest.shape == (3,) and sphere(r.xbest) == r.fbest
    assert r.mean.shape == (3,) and r.sigma > 0


def test_condition_bound_stops_an_ill_conditioned_search() -> None:
    es = es_ngd.NGDES(np.ones(6), 1.0, structure="dense", seed=0, max_condition=1e3)
    while not es.stop():
        x = es.ask()
        es.tell(x, [ellipsoid(v) for v in x])
    assert "condition" in es.stop()
    b = es.group.dense(es.state.factor)
    assert np.linalg.cond(b) ** 2 > 1e3
