"""Sparse Cholesky group ``sparse:N1,N2`` (MATH.md §4): ``p = 2·N1 + N2``, blocks of sizes N1, N2, N1.

``B = [[B_D1, 0, 0], [B_A, B_B, 0], [B_D2, 0, B_D3]]`` with ``B_D1``, ``B_D2``, ``B_D3`` diagonal
(stored as vectors), ``B_A`` dense ``N2×N1`` and ``B_B`` lower-triangular ``N2×N2``: a lower-triangular
factor whose last block couples to the first only entry by entry. The tangent has the same pattern,
with ``C = ½`` on every diagonal entry (of ``D1``, ``B``, ``D3``) and ``C = 1`` on ``B_A``, on the
strictly lower part of ``B_B`` and on ``B_D2`` (their mirrors are not free). Sampling is a block
back-substitution; the cost per iteration is O(n·(N1·N2 + N2²) + N2³). The factor dict holds
``"D1"``, ``"A"``, ``"B"``, ``"D2"``, ``"D3"`` and ``"Binv" = B_B⁻¹``, recomputed from ``B_B`` at every
step (O(N2³)), so that sampling is a matrix product.
"""

from __future__ import annotations

import math
from typing import Any

from es_ngd.backend import Array, Backend
from es_ngd.groups._block import assemble
from es_ngd.groups.base import (
    Factor,
    MatrixGroup,
    Tangent,
    frobenius,
    h_dense,
    h_diag,
    max_abs,
    snes_learning_rate,
    xnes_learning_rate,
)


class SparseCholesky(MatrixGroup):
    def __init__(self, dim: int, backend: Backend, n1: int, n2: int) -> None:
        super().__init__(dim, backend)
        if int(n1) != n1 or int(n2) != n2 or n1 < 0 or n2 < 0 or 2 * n1 + n2 != dim:
            raise ValueError(f"sparse:N1,N2 needs N1, N2 >= 0 with 2·N1 + N2 = p = {dim}, "
                             f"got N1 = {n1!r}, N2 = {n2!r}")
        self.n1, self.n2 = int(n1), int(n2)
        self.structure = f"sparse:{self.n1},{self.n2}"

    def _split(self, z: Array) -> tuple[Array, Array, Array]:
        n1, n2 = self.n1, self.n2
        return z[:, :n1], z[:, n1:n1 + n2], z[:, n1 + n2:]

    def identity(self, scale: float = 1.0) -> Factor:
        bk, n1, n2 = self.backend, self.n1, self.n2
        return {"D1": scale * bk.ones(n1), "A": bk.zeros((n2, n1)), "B": scale * bk.eye(n2),
                "Binv": bk.eye(n2) / scale, "D2": bk.zeros(n1), "D3": scale * bk.ones(n1)}

    def sample(self, factor: Factor, z: Array) -> Array:
        # back-substitution on Bᵀ = [[D1, B_Aᵀ, D2], [0, B_Bᵀ, 0], [0, 0, D3]] (row form):
        # x₃ = z₃ / d₃ ;  x₂ = B_B⁻ᵀ z₂ ;  x₁ = (z₁ − B_Aᵀ x₂ − d₂ x₃) / d₁
        z1, z2, z3 = self._split(z)
        x3 = z3 / factor["D3"]
        x2 = z2 @ factor["Binv"]
        x1 = (z1 - x2 @ factor["A"] - x3 * factor["D2"]) / factor["D1"]
        return self.backend.xp.concatenate([x1, x2, x3], 1)

    def whiten(self, factor: Factor, x: Array) -> Array:
        x1, x2, x3 = self._split(x)
        z1 = x1 * factor["D1"] + x2 @ factor["A"] + x3 * factor["D2"]
        return self.backend.xp.concatenate([z1, x2 @ factor["B"], x3 * factor["D3"]], 1)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        xp = self.backend.xp
        z1, z2, z3 = self._split(z)
        uz1, uz2 = z1 * u[:, None], z2 * u[:, None]
        g22 = uz2.T @ z2
        return {"D1": 0.5 * (u @ (z1 * z1) - shift),
                "A": z2.T @ uz1,  # Σ u z₂ z₁ᵀ, C = 1
                "B": xp.tril(g22, -1) + xp.diag(0.5 * (xp.diagonal(g22) - shift)),
                "D2": u @ (z1 * z3),  # the diagonal of Σ u z₃ z₁ᵀ, C = 1
                "D3": 0.5 * (u @ (z3 * z3) - shift)}

    def magnitude(self, tangent: Tangent) -> float:
        # ‖M‖₂ ≤ ‖block diagonal‖₂ + ‖[M_A; M_D2]‖₂ and ‖[M_A; M_D2]‖₂² ≤ ‖M_A‖_F² + max|M_D2|²
        diagonal = max(max_abs(tangent["D1"]), frobenius(tangent["B"]), max_abs(tangent["D3"]))
        return diagonal + (frobenius(tangent["A"]) ** 2 + max_abs(tangent["D2"]) ** 2) ** 0.5

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = [[h(M_D1), 0, 0], [H_A, h(M_B), 0], [H_D2, 0, h(M_D3)]] with
        # H_A = M_A + ½(M_A M_D1 + M_B M_A),  H_D2 = M_D2 + ½(M_D2 M_D1 + M_D3 M_D2)
        m_d1, m_a, m_b, m_d2, m_d3 = (step * tangent[key] for key in ("D1", "A", "B", "D2", "D3"))
        h_d1, h_b, h_d3 = h_diag(m_d1), h_dense(self.backend, m_b), h_diag(m_d3)
        h_a = m_a + 0.5 * (m_a * m_d1[None, :] + m_b @ m_a)
        h_d2 = m_d2 + 0.5 * (m_d2 * m_d1 + m_d3 * m_d2)
        bk = self.backend
        d1, b_b, d3 = factor["D1"], factor["B"], factor["D3"]
        new_b = bk.xp.tril(b_b @ h_b)  # exactly lower-triangular despite round-off
        return {"D1": d1 * h_d1,
                "A": factor["A"] * h_d1[None, :] + b_b @ h_a,
                "B": new_b,
                "Binv": bk.xp.tril(bk.xp.linalg.inv(new_b)),  # the inverse is lower-triangular too
                "D2": factor["D2"] * h_d1 + d3 * h_d2,
                "D3": d3 * h_d3}

    def logdet(self, factor: Factor) -> float:
        xp = self.backend.xp
        log_abs = [xp.log(abs(factor["D1"])).sum(), xp.log(abs(xp.diagonal(factor["B"]))).sum(),
                   xp.log(abs(factor["D3"])).sum()]
        return float(sum(log_abs))

    def variances(self, factor: Factor) -> Array:
        # B⁻¹ = [[D1⁻¹, 0, 0], [−B_B⁻¹ B_A D1⁻¹, B_B⁻¹, 0], [−D3⁻¹ D2 D1⁻¹, 0, D3⁻¹]]
        d1, d3, b_inv = factor["D1"], factor["D3"], factor["Binv"]
        w = b_inv @ factor["A"]
        var1 = (1.0 + (w * w).sum(0) + (factor["D2"] / d3) ** 2) / (d1 * d1)
        return self.backend.xp.concatenate([var1, (b_inv * b_inv).sum(0), 1.0 / (d3 * d3)])

    def condition_number(self, factor: Factor) -> float:
        """Estimate from the diagonal blocks ``D1``, ``B_B``, ``D3`` (a lower bound, as for ``up:K``:
        the couplings ``B_A`` and ``B_D2`` can only widen the spectrum)."""
        bk = self.backend
        s = bk.xp.concatenate([abs(factor["D1"]), bk.svdvals(factor["B"]), abs(factor["D3"])])
        return float(s.max() / s.min()) ** 2

    def dense(self, factor: Factor) -> Array:
        bk, n1, n2 = self.backend, self.n1, self.n2
        diag = bk.xp.diag
        return assemble(bk, [[diag(factor["D1"]), bk.zeros((n1, n2)), bk.zeros((n1, n1))],
                             [factor["A"], factor["B"], bk.zeros((n2, n1))],
                             [diag(factor["D2"]), bk.zeros((n1, n2)), diag(factor["D3"])]])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.dense(tangent)

    @property
    def default_learning_rate(self) -> float:
        """``2 η_SNES/√p``; xNES's when the triangular block is everything (``sparse:0,p`` is ``tril``).

        Measured on quadratics with this Hessian pattern (benchmarks/results/structured_learning_rates.txt):
        at p = 25 and 58 the search is stable up to 2.5 times ``η_SNES/√p`` and diverges at 4.
        """
        p = self.dim
        if self.n1 == 0:
            return xnes_learning_rate(p)
        return 2.0 * snes_learning_rate(p) / math.sqrt(p)

    def num_parameters(self) -> int:
        n1, n2 = self.n1, self.n2
        return 3 * n1 + n2 * n1 + n2 * (n2 + 1) // 2
