"""Quadratic test problems whose Hessian has the structure of one of the structured groups (MATH.md §4).

Shared by tests/test_groups_structured.py and benchmarks/structured_learning_rates.py.
"""

from __future__ import annotations

import numpy as np
from problems import rotated_ellipsoid_hessian


def arrow_hessian(k1: int, d: int, k2: int, seed: int) -> np.ndarray:
    """``H = LLᵀ`` with ``L`` in ``hier:k1,k2``: an arrow whose last ``k2`` rows are dense and couple to
    everything, a diagonal middle (entries 1 … 10³ in H) and a dense ``k1`` head block (k1, k2 >= 2)."""
    rng = np.random.default_rng(seed)
    p = k1 + d + k2
    factor = np.zeros((p, p))
    factor[:k1, :k1] = np.linalg.cholesky(rotated_ellipsoid_hessian(k1, 1e2, seed))
    factor[k1:k1 + d, k1:k1 + d] = np.diag(10 ** rng.uniform(0, 1.5, d))
    factor[k1 + d:, :k1 + d] = 3 * rng.standard_normal((k2, k1 + d))
    factor[k1 + d:, k1 + d:] = np.linalg.cholesky(rotated_ellipsoid_hessian(k2, 1e2, seed + 1))
    return factor @ factor.T


def kronecker_hessian(rows: int, cols: int, seed: int) -> np.ndarray:
    """``H₁ ⊗ H₂`` with rotated ellipsoids (condition 10² each) for the column and row indices."""
    return np.kron(rotated_ellipsoid_hessian(cols, 1e2, seed), rotated_ellipsoid_hessian(rows, 1e2, seed + 1))


def ar_precision(p: int, phi: list[float]) -> np.ndarray:
    """The precision of ``p`` consecutive values of a stationary AR process ``xₜ = Σₖ φₖ xₜ₋ₖ + εₜ``."""
    order = len(phi)
    # Yule–Walker: γⱼ − Σₖ φₖ γ_|j−k| = [j = 0] for j = 0 … order, then the AR recursion
    system, rhs = np.eye(order + 1), np.eye(order + 1)[0]
    for j in range(order + 1):
        for k, coefficient in enumerate(phi, start=1):
            system[j, abs(j - k)] -= coefficient
    gamma = list(np.linalg.solve(system, rhs))
    while len(gamma) < p:
        gamma.append(sum(c * gamma[-k] for k, c in enumerate(phi, start=1)))
    index = np.arange(p)
    return np.linalg.inv(np.asarray(gamma)[np.abs(index[:, None] - index[None, :])])


def sparse_hessian(n1: int, n2: int, seed: int) -> np.ndarray:
    """``H = BBᵀ`` with ``B`` in ``sparse:n1,n2``: diagonal blocks 1 … 10^1.5, strong couplings (n2 >= 2)."""
    rng = np.random.default_rng(seed)
    p = 2 * n1 + n2
    factor = np.zeros((p, p))
    factor[:n1, :n1] = np.diag(10 ** rng.uniform(0, 1.5, n1))
    factor[n1:n1 + n2, :n1] = 3 * rng.standard_normal((n2, n1))
    factor[n1:n1 + n2, n1:n1 + n2] = np.linalg.cholesky(rotated_ellipsoid_hessian(n2, 1e2, seed))
    factor[n1 + n2:, :n1] = np.diag(5 * rng.standard_normal(n1))
    factor[n1 + n2:, n1 + n2:] = np.diag(10 ** rng.uniform(0, 1.5, n1))
    return factor @ factor.T
