"""The core groups (MATH.md §3–§4): exact Fisher information, closure, reductions, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from fim_check import assert_exact_natural_gradient, random_element
from group_checks import (
    check_retraction,
    check_sample_whiten_variances,
    check_samples_match_the_distribution,
    strategy_moved_off_the_identity,
)

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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", CORE)
@pytest.mark.parametrize("step", [1e-4, 0.3, -0.9, -5.0])
def test_retraction_is_the_group_product_and_stays_invertible(structure: str, backend: str, step: float) -> None:
    rng = np.random.default_rng(7)
    group = make_group(structure, 7, backend)
    check_retraction(group, random_element(group, rng), rng, step)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("structure", CORE)
def test_sample_whiten_variances_match_dense_algebra(structure: str, backend: str) -> None:
    rng = np.random.default_rng(3)
    group = make_group(structure, 6, backend)
    factor = random_element(group, rng)
    b, _ = check_sample_whiten_variances(group, factor, rng)
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


@pytest.mark.parametrize("control", [{"step_size": "csa", "rank_one": True}, {"step_size": "csa", "rank_one": False},
                                     {"step_size": "tpa", "rank_one": True}, {"step_size": "xnes", "rank_one": False}],
                         ids=lambda c: f"{c['step_size']}-r{int(c['rank_one'])}")
@pytest.mark.parametrize(("block", "reference"), [("up:0", "diag"), ("low:0", "diag"), ("up:8", "dense"),
                                                  ("low:8", "dense")])
def test_block_groups_reduce_to_diag_and_dense_step_for_step(block: str, reference: str, control: dict) -> None:
    def f(x: np.ndarray) -> float:
        return float(np.sum(np.arange(1, 9) * (x - 0.3) ** 2) + 0.5 * x[0] * x[1])

    a = es_ngd.NGDES(np.ones(8), 0.7, structure=block, seed=11, **control)
    b = es_ngd.NGDES(np.ones(8), 0.7, structure=reference, seed=11, **control)
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
    check_samples_match_the_distribution(strategy_moved_off_the_identity(structure, 6))


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
