"""The core groups (MATH.md §3–§4): exact Fisher information, closure, reductions, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from fim_check import assert_exact_natural_gradient, random_element

import es_ngd
from es_ngd.groups import make_group

CORE = ["dense", "diag", "tril", "triu", "up:2", "low:2", "up:0", "low:0", "up:5", "low:5", "up:1", "low:3"]
BACKENDS = ["numpy", "torch"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", CORE)
def test_exact_fisher_information(structure: str, backend: str) -> None:
    assert_exact_natural_gradient(make_group(structure, 5, backend), seed=1)


@pytest.mark.parametrize("structure", ["dense", "tril"])
def test_fisher_check_catches_a_wrong_scaling(structure: str) -> None:
    """Negative control: doubling C (the mistake of treating every entry as weight 1) is caught."""
    group = make_group(structure, 4)

    class WrongC(type(group)):
        def natural_direction(self, z, u, shift=0.0):
            return {key: 2.0 * value for key, value in super().natural_direction(z, u, shift).items()}

    with pytest.raises(AssertionError):
        assert_exact_natural_gradient(WrongC(4, group.backend))


def _h(m: np.ndarray) -> np.ndarray:
    return np.eye(len(m)) + m + 0.5 * m @ m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", CORE)
@pytest.mark.parametrize("step", [1e-4, 0.3, -0.9, -5.0])
def test_retraction_is_the_group_product_and_stays_invertible(structure: str, backend: str, step: float) -> None:
    rng = np.random.default_rng(7)
    group = make_group(structure, 7, backend)
    bk = group.backend
    factor = random_element(group, rng)
    pattern = np.abs(bk.to_numpy(group.dense(factor))) > 0
    for _ in range(3):
        z = bk.asarray(rng.standard_normal((9, 7)))
        direction = group.natural_direction(z, bk.asarray(rng.standard_normal(9)), rng.uniform())
        before = bk.to_numpy(group.dense(factor))
        m = bk.to_numpy(group.tangent_dense(direction))
        factor = group.retract(factor, direction, step)
        after = bk.to_numpy(group.dense(factor))
        np.testing.assert_allclose(after, before @ _h(step * m), rtol=1e-9, atol=1e-9 * np.abs(after).max())
        # stays in the group: no entry outside the group's pattern becomes non-zero
        assert not (np.abs(after)[~pattern] > 0).any()
        sign, logdet = np.linalg.slogdet(after)
        assert sign != 0 and np.isfinite(group.logdet(factor))
        assert group.logdet(factor) == pytest.approx(logdet, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", CORE)
def test_sample_whiten_variances_match_dense_algebra(structure: str, backend: str) -> None:
    rng = np.random.default_rng(3)
    group = make_group(structure, 6, backend)
    bk = group.backend
    factor = random_element(group, rng)
    b = bk.to_numpy(group.dense(factor))
    z = rng.standard_normal((4, 6))
    x = bk.to_numpy(group.sample(factor, bk.asarray(z)))
    np.testing.assert_allclose(x, z @ np.linalg.inv(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bk.to_numpy(group.whiten(factor, bk.asarray(x))), z, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bk.to_numpy(group.variances(factor)), np.diag(np.linalg.inv(b @ b.T)), rtol=1e-9)
    cond = np.linalg.cond(b) ** 2
    if ":" in structure and int(structure.split(":")[1]) not in (0, 6):
        assert group.condition_number(factor) <= cond * (1 + 1e-9)  # documented lower bound
    else:
        assert group.condition_number(factor) == pytest.approx(cond, rel=1e-8)


def test_natural_direction_keeps_only_the_pattern_with_its_scaling() -> None:
    """κ and C by hand on a dense G for the block-upper group."""
    rng = np.random.default_rng(0)
    z, u = rng.standard_normal((8, 5)), rng.standard_normal(8)
    g = (z * u[:, None]).T @ z - 0.4 * np.eye(5)
    m = make_group("up:2", 5).tangent_dense(make_group("up:2", 5).natural_direction(z, u, 0.4))
    expected = np.zeros((5, 5))
    expected[:2, :2] = 0.5 * g[:2, :2]
    expected[:2, 2:] = g[:2, 2:]
    expected[2:, 2:] = np.diag(0.5 * np.diag(g)[2:])
    np.testing.assert_allclose(m, expected, atol=1e-12)


@pytest.mark.parametrize(("block", "reference"), [("up:0", "diag"), ("low:0", "diag"), ("up:8", "dense"),
                                                  ("low:8", "dense")])
def test_block_groups_reduce_to_diag_and_dense_step_for_step(block: str, reference: str) -> None:
    def f(x: np.ndarray) -> float:
        return float(np.sum(np.arange(1, 9) * (x - 0.3) ** 2) + 0.5 * x[0] * x[1])

    a = es_ngd.NGDES(np.ones(8), 0.7, structure=block, seed=11)
    b = es_ngd.NGDES(np.ones(8), 0.7, structure=reference, seed=11)
    assert a.rates == b.rates
    for _ in range(40):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_allclose(xa, xb, rtol=1e-11, atol=1e-13)
        fa = [f(x) for x in xa]
        a.tell(xa, fa)
        b.tell(xb, fa)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-11)
    assert a.sigma == pytest.approx(b.sigma, rel=1e-11)
    np.testing.assert_allclose(a.covariance(), b.covariance(), rtol=1e-9)


@pytest.mark.parametrize("structure", ["dense", "diag", "tril", "triu", "up:2", "low:2"])
def test_sample_covariance_matches_search_distribution(structure: str) -> None:
    rng = np.random.default_rng(5)
    p = 6
    es = es_ngd.NGDES(np.zeros(p), 0.8, structure=structure, seed=2)
    a = rng.standard_normal((p, p))
    hess = a @ a.T + np.eye(p)
    for _ in range(30):  # move B away from the identity
        x = es.ask()
        es.tell(x, [float(v @ hess @ v) for v in x])
    n = 40_000
    samples = np.asarray(es.ask(n))
    cov = es.covariance()
    np.testing.assert_allclose(samples.mean(0), es.mean, atol=5 * np.sqrt(np.diag(cov) / n).max())
    empirical = np.cov(samples.T)
    stderr = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert (np.abs(empirical - cov) < 5 * stderr).all()


@pytest.mark.parametrize(("structure", "message"), [
    ("bogus", "unknown structure"),
    ("up", "takes 1 integer"),
    ("up:1,2", "takes 1 integer"),
    ("up:x", "must be integers"),
    ("diag:3", "takes 0 integer"),
    ("up:9", "0 <= K <= p"),
    ("low:-1", "0 <= K <= p"),
])
def test_malformed_structures_are_clear_errors(structure: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        es_ngd.NGDES(np.zeros(8), 1.0, structure=structure)


def test_unknown_structure_error_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"valid structures: .*'dense'.*'up:K'"):
        make_group("cholesky", 3)
