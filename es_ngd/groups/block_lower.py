"""Block lower-triangular group ``low:K`` (MATH.md §4): the *precision* is low-rank plus diagonal.

``B = [[B_A, 0], [B_C, B_D]]`` with ``B_A ∈ GL(K)`` dense and ``B_D`` diagonal; the tangent is
``[[M_A sym, 0], [M_C, M_D diag]]`` with ``C = [[½, 0], [1, ½]]``. In the factor dict ``C`` holds
``B_C`` (``(p−K) × K``).
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


class BlockLower(BlockTriangular):
    prefix = "low"

    def _coupling_zeros(self) -> Array:
        return self.backend.zeros((self.dim - self.k, self.k))

    def sample(self, factor: Factor, z: Array) -> Array:
        # x_D = B_D⁻¹ z_D ;  x_A = B_A⁻ᵀ (z_A − B_Cᵀ x_D)   (row form)
        # written into one output array, as in up:K (only the K columns of x_A are temporaries)
        k, xp = self.k, self.backend.xp
        out = self.backend.empty(tuple(z.shape))
        xd = out[:, k:]
        xp.divide(z[:, k:], factor["D"], out=xd)
        xp.matmul(z[:, :k] - xd @ factor["C"], factor["Ainv"], out=out[:, :k])
        return out

    def whiten(self, factor: Factor, x: Array) -> Array:
        k = self.k
        xd = x[:, k:]
        za = x[:, :k] @ factor["A"] + xd @ factor["C"]
        return self.backend.xp.concatenate([za, xd * factor["D"]], 1)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        m_a, m_d, uza, zd = self._diagonal_parts(z, u, shift)
        return {"A": m_a, "C": zd.T @ uza, "D": m_d}  # Σ u z_D z_Aᵀ, C = 1

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = [[h(M_A), 0], [M_C + ½(M_C M_A + M_D M_C), h(M_D)]]
        m_a, m_c, m_d, h_a, h_d = self._h_blocks(tangent, step)
        h_c = m_c + 0.5 * (m_c @ m_a + m_d[:, None] * m_c)
        d = factor["D"]
        return self._new_factor(factor["A"] @ h_a, factor["C"] @ h_a + d[:, None] * h_c, d * h_d)

    def variances(self, factor: Factor) -> Array:
        # rows of B⁻ᵀ = [[B_A⁻ᵀ, −B_A⁻ᵀ B_Cᵀ B_D⁻¹], [0, B_D⁻¹]]
        ainv, d = factor["Ainv"], factor["D"]
        w = (factor["C"] @ ainv) / d[:, None]
        var_a = (ainv * ainv).sum(0) + (w * w).sum(0)
        return self.backend.xp.concatenate([var_a, 1.0 / (d * d)])

    def dense(self, factor: Factor) -> Array:
        bk = self.backend
        return assemble(bk, [[factor["A"], bk.zeros((self.k, self.dim - self.k))],
                             [factor["C"], bk.xp.diag(factor["D"])]])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.dense(tangent)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        # B⁻¹ y = [B_A⁻¹ y_A; B_D⁻¹ (y_D − B_C B_A⁻¹ y_A)]   (row form)
        k = self.k
        ya = y[:, :k] @ factor["Ainv"].T
        return self.backend.xp.concatenate([ya, (y[:, k:] - ya @ factor["C"].T) / factor["D"]], 1)

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # K products with the first K columns uⱼ of B⁻ᵀ give the first K rows of W = B⁻¹HB⁻ᵀ; the other
        # columns are vᵢ = eᵢ/dᵢ − Σⱼ (B_C)ᵢⱼ/dᵢ uⱼ, whose W_ii need only diag H besides those products
        k, d = self.k, factor["D"]
        hu = hvp(self.sample(factor, unit_rows(self.backend, 0, k, self.dim)))
        w = self.solve(factor, hu)
        diagonal = whitened_diagonal(hess_diag()[k:], d, -factor["C"] / d[:, None], hu[:, k:], w[:, :k])
        return {"A": 0.5 * sym(w[:, :k] - shift * self.backend.eye(k)), "C": w[:, k:].T,
                "D": 0.5 * (diagonal - shift)}
