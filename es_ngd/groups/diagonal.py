"""Diagonal group: ``B = diag(b)``; 𝓜 the diagonal matrices, C = ½ (MATH.md §4). This is SNES."""

from __future__ import annotations

from typing import Any

from es_ngd.backend import Array
from es_ngd.groups.base import (
    Factor,
    HessianDiagonal,
    HessianProducts,
    MatrixGroup,
    Tangent,
    h_diag,
    max_abs,
    snes_learning_rate,
)


class Diagonal(MatrixGroup):
    structure = "diag"

    def identity(self, scale: float = 1.0) -> Factor:
        return {"b": scale * self.backend.ones(self.dim)}

    def sample(self, factor: Factor, z: Array) -> Array:
        return z / factor["b"]

    def whiten(self, factor: Factor, x: Array) -> Array:
        return x * factor["b"]

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        return {"m": 0.5 * (u @ (z * z) - shift)}  # a matrix-vector product, not a strided sum

    def magnitude(self, tangent: Tangent) -> float:
        return max_abs(tangent["m"])

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        return {"b": factor["b"] * h_diag(step * tangent["m"])}

    def logdet(self, factor: Factor) -> float:
        return float(self.backend.xp.log(abs(factor["b"])).sum())

    def variances(self, factor: Factor) -> Array:
        return 1.0 / (factor["b"] * factor["b"])

    def condition_number(self, factor: Factor) -> float:
        b = abs(factor["b"])
        return float(b.max() / b.min()) ** 2

    def dense(self, factor: Factor) -> Array:
        return self.backend.xp.diag(factor["b"])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.backend.xp.diag(tangent["m"])

    @property
    def default_learning_rate(self) -> float:
        return snes_learning_rate(self.dim)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        return y / factor["b"]

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # B⁻¹HB⁻ᵀ has the diagonal Hᵢᵢ/bᵢ²: no Hessian-vector product at all
        b = factor["b"]
        return {"m": 0.5 * (hess_diag() / (b * b) - shift)}
