"""Block upper-triangular group ``up:K`` (MATH.md §4): the covariance is low-rank plus diagonal,
the structure of VkD-CMA, at O(nKp + K²p) per iteration.

``B = [[B_A, B_B], [0, B_D]]`` with ``B_A ∈ GL(K)`` dense and ``B_D`` diagonal; the tangent is
``[[M_A sym, M_B], [0, M_D diag]]`` with ``C = [[½, 1], [0, ½]]``. In the factor dict ``C`` holds the
coupling block ``B_B`` (``K × (p−K)``). ``up:0`` is the diagonal group, ``up:p`` the dense one.
"""

from __future__ import annotations

from typing import Any

from es_ngd.backend import Array
from es_ngd.groups._block import BlockTriangular, assemble
from es_ngd.groups.base import (
    Factor,
    HessianDiagonal,
    HessianProducts,
    Tangent,
    sym,
    unit_rows,
    whitened_diagonal,
)


class BlockUpper(BlockTriangular):
    prefix = "up"

    def _coupling_zeros(self) -> Array:
        return self.backend.zeros((self.k, self.dim - self.k))

    def sample(self, factor: Factor, z: Array) -> Array:
        # x_A = B_A⁻ᵀ z_A ;  x_D = B_D⁻¹ (z_D − B_Bᵀ x_A)   (row form)
        # written into one output array: temporaries of the population's size cost more than the
        # arithmetic at large p (fresh pages from the kernel on every generation)
        k, xp = self.k, self.backend.xp
        out = self.backend.empty(tuple(z.shape))
        xa = out[:, :k]
        xp.matmul(z[:, :k], factor["Ainv"], out=xa)
        xd = out[:, k:]
        xp.matmul(xa, factor["C"], out=xd)
        xp.subtract(z[:, k:], xd, out=xd)
        xd /= factor["D"]
        return out

    def whiten(self, factor: Factor, x: Array) -> Array:
        k = self.k
        xa = x[:, :k]
        za = xa @ factor["A"]
        zd = xa @ factor["C"] + x[:, k:] * factor["D"]
        return self.backend.xp.concatenate([za, zd], 1)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        m_a, m_d, uza, zd = self._diagonal_parts(z, u, shift)
        return {"A": m_a, "C": uza.T @ zd, "D": m_d}  # Σ u z_A z_Dᵀ, C = 1

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = [[h(M_A), M_B + ½(M_A M_B + M_B M_D)], [0, h(M_D)]]
        m_a, m_b, m_d, h_a, h_d = self._h_blocks(tangent, step)
        h_b = m_b + 0.5 * (m_a @ m_b + m_b * m_d[None, :])
        a = factor["A"]
        return self._new_factor(a @ h_a, a @ h_b + factor["C"] * h_d[None, :], factor["D"] * h_d)

    def variances(self, factor: Factor) -> Array:
        # rows of B⁻ᵀ = [[B_A⁻ᵀ, 0], [−B_D⁻¹ B_Bᵀ B_A⁻ᵀ, B_D⁻¹]]
        ainv = factor["Ainv"]
        w = ainv @ factor["C"]
        var_a = (ainv * ainv).sum(0)
        var_d = ((w * w).sum(0) + 1.0) / (factor["D"] * factor["D"])
        return self.backend.xp.concatenate([var_a, var_d])

    def dense(self, factor: Factor) -> Array:
        bk = self.backend
        return assemble(bk, [[factor["A"], factor["C"]],
                             [bk.zeros((self.dim - self.k, self.k)), bk.xp.diag(factor["D"])]])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.dense(tangent)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        # B⁻¹ y = [B_A⁻¹ (y_A − B_B B_D⁻¹ y_D); B_D⁻¹ y_D]   (row form)
        k = self.k
        yd = y[:, k:] / factor["D"]
        return self.backend.xp.concatenate([(y[:, :k] - yd @ factor["C"].T) @ factor["Ainv"].T, yd], 1)

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # K products with the first K columns of B⁻ᵀ give the first K rows of W = B⁻¹HB⁻ᵀ (its M_A and M_B
        # entries); the other columns of B⁻ᵀ are eᵢ/dᵢ, so diag(W_D) = diag(H_D)/d²
        k = self.k
        w = self.solve(factor, hvp(self.sample(factor, unit_rows(self.backend, 0, k, self.dim))))
        return {"A": 0.5 * sym(w[:, :k] - shift * self.backend.eye(k)), "C": w[:, k:],
                "D": 0.5 * (whitened_diagonal(hess_diag()[k:], factor["D"]) - shift)}
