"""Triangular groups (Cholesky-type factors): ``"tril"`` and its mirror ``"triu"`` (MATH.md §4).

𝓜 is the triangular matrices of the same side; C = ½ on the diagonal and 1 off it (an off-diagonal
entry's mirror is not free, so its Fisher weight is 1). Sampling is one triangular solve, O(np²).
"""

from __future__ import annotations

from typing import Any

from es_ngd.backend import Array
from es_ngd.groups.base import (
    Factor,
    HessianDiagonal,
    HessianProducts,
    MatrixGroup,
    Tangent,
    frobenius,
    h_dense,
    xnes_learning_rate,
)


class _Triangular(MatrixGroup):
    lower: bool

    def _keep(self, a: Array, offset: int = 0) -> Array:
        xp = self.backend.xp
        return xp.tril(a, -offset) if self.lower else xp.triu(a, offset)

    def identity(self, scale: float = 1.0) -> Factor:
        return {"B": scale * self.backend.eye(self.dim)}

    def sample(self, factor: Factor, z: Array) -> Array:
        return self.backend.solve_triangular(factor["B"], z, lower=self.lower, left=False)

    def whiten(self, factor: Factor, x: Array) -> Array:
        return x @ factor["B"]

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        xp = self.backend.xp
        g = (z * u[:, None]).T @ z
        diag = 0.5 * (xp.diagonal(g) - shift)
        return {"M": self._keep(g, 1) + xp.diag(diag)}

    def magnitude(self, tangent: Tangent) -> float:
        return frobenius(tangent["M"])

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        return {"B": self._keep(factor["B"] @ h_dense(self.backend, step * tangent["M"]))}

    def logdet(self, factor: Factor) -> float:
        xp = self.backend.xp
        return float(xp.log(abs(xp.diagonal(factor["B"]))).sum())

    def variances(self, factor: Factor) -> Array:
        inv = self.backend.solve_triangular(factor["B"], self.backend.eye(self.dim), lower=self.lower)
        return (inv * inv).sum(0)

    def dense(self, factor: Factor) -> Array:
        return factor["B"]

    def tangent_dense(self, tangent: Tangent) -> Array:
        return tangent["M"]

    @property
    def default_learning_rate(self) -> float:
        return xnes_learning_rate(self.dim)

    def num_parameters(self) -> int:
        return self.dim * (self.dim + 1) // 2

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        return self.backend.solve_triangular(factor["B"], y.T, lower=self.lower).T

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # a triangle of B⁻¹HB⁻ᵀ touches every column of B⁻ᵀ: p products, as for dense
        xp = self.backend.xp
        v = self.sample(factor, self.backend.eye(self.dim))  # rows: the columns of B⁻ᵀ
        w = v @ hvp(v).T
        return {"M": self._keep(w, 1) + xp.diag(0.5 * (xp.diagonal(w) - shift))}


class LowerTriangular(_Triangular):
    structure = "tril"
    lower = True


class UpperTriangular(_Triangular):
    structure = "triu"
    lower = False
