"""Checks every matrix group must pass, shared by tests/test_groups.py and tests/test_groups_structured.py
(each file picks its groups and adds what is particular to them)."""

from __future__ import annotations

import numpy as np
import pytest

import es_ngd
from es_ngd.groups.base import Factor, MatrixGroup


def h(m: np.ndarray) -> np.ndarray:
    """The retraction map ``h(M) = I + M + ½M²`` (MATH.md §1), densely."""
    return np.eye(len(m)) + m + 0.5 * m @ m


def check_retraction(group: MatrixGroup, factor: Factor, rng: np.random.Generator, step: float) -> None:
    """Three steps from ``factor``: each is ``B·h(step·M)``, keeps ``B``'s pattern and leaves it invertible
    with the right ``log|det B|``."""
    bk, p = group.backend, group.dim
    pattern = np.abs(bk.to_numpy(group.dense(factor))) > 0
    for _ in range(3):
        z = bk.asarray(rng.standard_normal((9, p)))
        direction = group.natural_direction(z, bk.asarray(rng.standard_normal(9)), rng.uniform())
        before = bk.to_numpy(group.dense(factor))
        m = bk.to_numpy(group.tangent_dense(direction))
        factor = group.retract(factor, direction, step)
        after = bk.to_numpy(group.dense(factor))
        np.testing.assert_allclose(after, before @ h(step * m), rtol=1e-9, atol=1e-9 * np.abs(after).max())
        assert not (np.abs(after)[~pattern] > 0).any()  # stays in the group's pattern
        sign, logdet = np.linalg.slogdet(after)
        assert sign != 0 and np.isfinite(group.logdet(factor))
        assert group.logdet(factor) == pytest.approx(logdet, rel=1e-9, abs=1e-9)


def check_sample_whiten_variances(group: MatrixGroup, factor: Factor,
                                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``sample`` is ``z B⁻¹``, ``whiten`` undoes it, ``variances`` is the diagonal of ``(BBᵀ)⁻¹``.

    Returns the dense ``B`` and the noise rows used, for the caller's own checks.
    """
    bk, p = group.backend, group.dim
    b = bk.to_numpy(group.dense(factor))
    z = rng.standard_normal((4, p))
    x = bk.to_numpy(group.sample(factor, bk.asarray(z)))
    np.testing.assert_allclose(x, z @ np.linalg.inv(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bk.to_numpy(group.whiten(factor, bk.asarray(x))), z, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bk.to_numpy(group.variances(factor)), np.diag(np.linalg.inv(b @ b.T)), rtol=1e-9)
    return b, z


def strategy_moved_off_the_identity(structure: str, p: int, **options: object) -> es_ngd.NGDES:
    """An NGDES (seed 2) after 30 generations on a random positive-definite quadratic."""
    rng = np.random.default_rng(5)
    es = es_ngd.NGDES(np.zeros(p), 0.8, structure=structure, seed=2, **options)
    a = rng.standard_normal((p, p))
    hess = a @ a.T + np.eye(p)
    for _ in range(30):  # move B away from the identity
        x = es.ask()
        es.tell(x, [float(v @ hess @ v) for v in x])
    return es


def check_samples_match_the_distribution(es: es_ngd.NGDES, n: int = 40_000) -> None:
    """Mean and covariance of ``n`` asked candidates within 5 standard errors of ``μ`` and ``σ²(BBᵀ)⁻¹``."""
    cov = es.covariance()
    samples = np.asarray(es.ask(n))
    np.testing.assert_allclose(samples.mean(0), es.mean, atol=5 * np.sqrt(np.diag(cov) / n).max())
    empirical = np.cov(samples.T)
    stderr = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert (np.abs(empirical - cov) < 5 * stderr).all()
