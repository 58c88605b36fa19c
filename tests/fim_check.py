"""Exact-Fisher check for any group (MATH.md §3), shared by the group test files.

For a random group element ``B₀`` and a quadratic objective ``f(w) = ½ wᵀHw + bᵀw`` (whose expected
value under ``N(μ, Σ)`` is closed-form), parametrise the search distribution in local coordinates
``θ = (δ, c)``: ``μ = μ₀ + σ B₀⁻ᵀ δ``, ``B = B₀ h(Σₐ cₐ Eₐ)`` with ``{Eₐ}`` an orthonormal basis of the
span of the group's sub-algebra 𝓜 (built from the group's own ``natural_direction``). torch autograd
gives the gradient ``g = ∇_θ E[f]`` and the Gaussian FIM ``F = Jμᵀ Σ⁻¹ Jμ + ½ tr(Σ⁻¹∂Σ Σ⁻¹∂Σ)``.
The natural-gradient *descent* direction in 𝓜 is ``−F⁻¹g``; the group's
``natural_direction(z, u, 0)`` with ``Σ uᵢ zᵢzᵢᵀ = σ² B₀⁻¹ H B₀⁻ᵀ`` (the whitened gradient that the
population estimates) must equal it. Working on the span makes the check basis-free, so groups with
a redundant parametrisation (Kronecker) are compared with the pseudo-inverse direction.
"""

from __future__ import annotations

import numpy as np
import torch

from es_ngd.groups.base import MatrixGroup


def random_element(group: MatrixGroup, rng: np.random.Generator, steps: int = 3) -> dict:
    """A generic group element: a few random retractions away from the identity."""
    bk, p = group.backend, group.dim
    factor = group.identity(1.0 + rng.uniform())
    for _ in range(steps):
        z = bk.asarray(rng.standard_normal((2 * p + 2, p)))
        u = bk.asarray(rng.standard_normal(2 * p + 2) / (2 * p + 2))
        direction = group.natural_direction(z, u, 0.0)
        factor = group.retract(factor, direction, 0.3 / max(group.magnitude(direction), 1e-12))
    return factor


def subalgebra_basis(group: MatrixGroup) -> np.ndarray:
    """Orthonormal basis (rows, flattened p×p) of the span of the group's sub-algebra 𝓜."""
    bk, p = group.backend, group.dim
    spanning = []
    for i in range(p):
        for j in range(i, p):
            z = np.zeros((1, p))
            z[0, i] += 1.0
            z[0, j] += 1.0
            tangent = group.natural_direction(bk.asarray(z), bk.asarray(np.ones(1)), 0.0)
            spanning.append(bk.to_numpy(group.tangent_dense(tangent)).reshape(-1))
    _, s, vt = np.linalg.svd(np.array(spanning), full_matrices=False)
    return vt[s > 1e-10 * s[0]]


def natural_gradient_by_autodiff(b0: np.ndarray, sigma: float, mu0: np.ndarray, hess: np.ndarray,
                                 lin: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(F⁻¹g)`` split into the mean part (p) and the 𝓜 part as a dense p×p matrix, and ``F``."""
    p, d = b0.shape[0], basis.shape[0]
    B0 = torch.tensor(b0)
    E = torch.tensor(basis).reshape(d, p, p)
    H, bvec, m0 = torch.tensor(hess), torch.tensor(lin), torch.tensor(mu0)
    eye = torch.eye(p, dtype=torch.float64)

    def mean(theta: torch.Tensor) -> torch.Tensor:
        return m0 + sigma * torch.linalg.solve(B0.T, theta[:p])

    def cov(theta: torch.Tensor) -> torch.Tensor:
        m = torch.einsum("a,aij->ij", theta[p:], E)
        b = B0 @ (eye + m + 0.5 * m @ m)
        return sigma**2 * torch.linalg.inv(b @ b.T)

    def expected_f(theta: torch.Tensor) -> torch.Tensor:
        mu, s = mean(theta), cov(theta)
        return 0.5 * torch.trace(H @ s) + 0.5 * mu @ H @ mu + bvec @ mu

    theta0 = torch.zeros(p + d, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(expected_f, theta0)
    j_mu = torch.autograd.functional.jacobian(mean, theta0)  # (p, p+d)
    j_cov = torch.autograd.functional.jacobian(cov, theta0)  # (p, p, p+d)
    prec = torch.linalg.inv(cov(theta0))
    pj = torch.einsum("ij,jka->ika", prec, j_cov)
    fim = j_mu.T @ prec @ j_mu + 0.5 * torch.einsum("ija,jib->ab", pj, pj)
    nat = torch.linalg.solve(fim, grad).numpy()
    return nat[:p], (nat[p:] @ basis).reshape(p, p), fim.numpy()


def assert_exact_natural_gradient(group: MatrixGroup, seed: int = 0, rtol: float = 1e-8) -> None:
    """Assert ``natural_direction`` is the exact natural gradient of the group (see module doc)."""
    rng = np.random.default_rng(seed)
    bk, p = group.backend, group.dim
    factor = random_element(group, rng)
    b0 = bk.to_numpy(group.dense(factor))
    sigma = 0.7
    mu0 = rng.standard_normal(p)
    a = rng.standard_normal((p, p))
    hess, lin = a @ a.T + 0.5 * np.eye(p), rng.standard_normal(p)
    basis = subalgebra_basis(group)
    nat_mean, nat_m, fim = natural_gradient_by_autodiff(b0, sigma, mu0, hess, lin, basis)

    # the mean block of F is the identity and decoupled from 𝓜 (MATH.md §3)
    np.testing.assert_allclose(fim[:p, :p], np.eye(p), atol=1e-10)
    np.testing.assert_allclose(fim[:p, p:], 0.0, atol=1e-10)
    # the mean's natural gradient is B₀⁻¹ ∇μE[f] scaled by σ: what Σ uᵢ zᵢ estimates
    binv = np.linalg.inv(b0)
    np.testing.assert_allclose(nat_mean, sigma * binv @ (hess @ mu0 + lin), rtol=rtol, atol=1e-12)

    # whitened covariance gradient Ĝ = σ² B₀⁻¹ H B₀⁻ᵀ written as Σ uᵢ zᵢ zᵢᵀ
    g_hat = sigma**2 * binv @ hess @ binv.T
    lam, vecs = np.linalg.eigh(g_hat)
    direction = group.natural_direction(bk.asarray(vecs.T), bk.asarray(lam), 0.0)
    got = bk.to_numpy(group.tangent_dense(direction))
    scale = np.abs(nat_m).max()
    np.testing.assert_allclose(got, -nat_m, rtol=rtol, atol=rtol * scale)

    # the shift argument subtracts shift·I from G before κ
    shift = 0.37
    lam_s, vecs_s = np.linalg.eigh(g_hat - shift * np.eye(p))
    shifted = group.natural_direction(bk.asarray(vecs.T), bk.asarray(lam), shift)
    expected = group.natural_direction(bk.asarray(vecs_s.T), bk.asarray(lam_s), 0.0)
    np.testing.assert_allclose(bk.to_numpy(group.tangent_dense(shifted)),
                               bk.to_numpy(group.tangent_dense(expected)), rtol=1e-10, atol=1e-12 * scale)
