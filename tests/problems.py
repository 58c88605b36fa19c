"""Test objectives (all minimised, optimum value 0)."""

from __future__ import annotations

import numpy as np


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def ellipsoid(x: np.ndarray, condition: float = 1e6) -> float:
    p = len(x)
    return float(np.sum(condition ** (np.arange(p) / max(p - 1, 1)) * x**2))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rotation(p: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    return q * np.sign(np.diag(r))


def quadratic(hessian: np.ndarray):
    def f(x: np.ndarray) -> float:
        return float(0.5 * x @ hessian @ x)

    return f


def rotated_ellipsoid_hessian(p: int, condition: float, seed: int) -> np.ndarray:
    q = rotation(p, seed)
    return q @ np.diag(condition ** (np.arange(p) / (p - 1))) @ q.T


def diagonal_plus_low_rank_hessian(p: int, k: int, seed: int) -> np.ndarray:
    """A diagonal Hessian plus a strong rank-k term: the structure that ``up:K`` models."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((p, k)))[0]
    return np.diag(10 ** rng.uniform(0, 2, p)) + u @ np.diag(10 ** rng.uniform(3, 4, k)) @ u.T


def diagonal_minus_low_rank_hessian(p: int, k: int, seed: int, strength: tuple[float, float] = (1, 2)) -> np.ndarray:
    """A Hessian that is diagonal plus a (negative) rank-k term, i.e. whose inverse is diagonal plus
    a positive rank-k term: the low-rank + diagonal *covariance* that ``up:K`` (like VkD-CMA) models.
    The rank-k term's eigenvalues are ``10^U(strength)``; the diagonal's ``10^U(−1, 1)``."""
    rng = np.random.default_rng(seed)
    v = np.linalg.qr(rng.standard_normal((p, k)))[0]
    covariance = np.diag(10 ** rng.uniform(-1, 1, p)) + v @ np.diag(10 ** rng.uniform(*strength, k)) @ v.T
    return np.linalg.inv(covariance)
