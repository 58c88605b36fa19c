"""Dense ``GL(p)``: any invertible B; 𝓜 the symmetric matrices, C = ½ (MATH.md §4).

With C = ½ the step is xNES with ``exp`` replaced by ``h`` (difference O(η³)). The inverse is
recomputed from the factor after every step (O(p³), the order of the step itself), so sampling is one
matrix product and no round-off accumulates in a maintained inverse.
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
    sym,
    xnes_learning_rate,
)


class Dense(MatrixGroup):
    structure = "dense"

    def identity(self, scale: float = 1.0) -> Factor:
        eye = self.backend.eye(self.dim)
        return {"B": scale * eye, "Binv": eye / scale}

    def sample(self, factor: Factor, z: Array) -> Array:
        return z @ factor["Binv"]

    def whiten(self, factor: Factor, x: Array) -> Array:
        return x @ factor["B"]

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        g = (z * u[:, None]).T @ z - shift * self.backend.eye(self.dim)
        return {"M": 0.5 * sym(g)}

    def magnitude(self, tangent: Tangent) -> float:
        return frobenius(tangent["M"])

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        b = factor["B"] @ h_dense(self.backend, step * tangent["M"])
        return {"B": b, "Binv": self.backend.xp.linalg.inv(b)}

    def logdet(self, factor: Factor) -> float:
        return float(self.backend.xp.linalg.slogdet(factor["B"])[1])

    def variances(self, factor: Factor) -> Array:
        return (factor["Binv"] * factor["Binv"]).sum(0)

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
        return y @ factor["Binv"].T

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # every entry is kept: p products with the columns vᵢ of B⁻ᵀ (the rows of B⁻¹), W_ij = vᵢᵀ H vⱼ
        v = factor["Binv"]
        w = v @ hvp(v).T
        return {"M": 0.5 * sym(w - shift * self.backend.eye(self.dim))}
