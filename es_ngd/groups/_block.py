"""What the two block-triangular groups ``up:K`` and ``low:K`` share: a dense ``K×K`` block ``A``
(symmetric tangent, C = ½), a diagonal block ``D`` (C = ½), and a rectangular coupling block
(C = 1) on one side of the diagonal. Each subclass fills in where the coupling sits."""

from __future__ import annotations

from typing import Any

from es_ngd.backend import Array, Backend
from es_ngd.groups.base import (
    Factor,
    MatrixGroup,
    Tangent,
    frobenius,
    h_dense,
    h_diag,
    max_abs,
    snes_learning_rate,
    sym,
    xnes_learning_rate,
)


class BlockTriangular(MatrixGroup):
    prefix: str

    def __init__(self, dim: int, backend: Backend, k: int) -> None:
        super().__init__(dim, backend)
        if int(k) != k or not 0 <= k <= dim:
            raise ValueError(f"{self.prefix}:K needs 0 <= K <= p = {dim}, got K = {k!r}")
        self.k = int(k)
        self.structure = f"{self.prefix}:{self.k}"

    def identity(self, scale: float = 1.0) -> Factor:
        bk, k, d = self.backend, self.k, self.dim - self.k
        return {"A": scale * bk.eye(k), "Ainv": bk.eye(k) / scale, "C": self._coupling_zeros(),
                "D": scale * bk.ones(d)}

    def _coupling_zeros(self) -> Array:
        raise NotImplementedError

    def _diagonal_parts(self, z: Array, u: Array, shift: Any) -> tuple[Array, Array, Array, Array]:
        """``M_A``, ``M_D`` and the weighted blocks ``u zA``, ``zD`` used by the coupling."""
        bk, k = self.backend, self.k
        za, zd = z[:, :k], z[:, k:]
        uza = za * u[:, None]
        m_a = 0.5 * sym(uza.T @ za - shift * bk.eye(k))
        m_d = 0.5 * ((zd * zd * u[:, None]).sum(0) - shift)
        return m_a, m_d, uza, zd

    def magnitude(self, tangent: Tangent) -> float:
        # ‖[[A, C],[0, D]]‖₂ ≤ max(‖A‖₂, ‖D‖₂) + ‖C‖₂ ≤ max(‖A‖_F, max|D|) + ‖C‖_F
        return max(frobenius(tangent["A"]), max_abs(tangent["D"])) + frobenius(tangent["C"])

    def _h_blocks(self, tangent: Tangent, step: float) -> tuple[Array, Array, Array, Array, Array]:
        m_a, m_c, m_d = step * tangent["A"], step * tangent["C"], step * tangent["D"]
        return m_a, m_c, m_d, h_dense(self.backend, m_a), h_diag(m_d)

    def _new_factor(self, a: Array, c: Array, d: Array) -> Factor:
        # B_A⁻¹ is recomputed from B_A at every step (O(K³)), so no round-off accumulates in it
        return {"A": a, "Ainv": self.backend.xp.linalg.inv(a), "C": c, "D": d}

    def logdet(self, factor: Factor) -> float:
        xp = self.backend.xp
        return float(xp.linalg.slogdet(factor["A"])[1] + xp.log(abs(factor["D"])).sum())

    def condition_number(self, factor: Factor) -> float:
        """Estimate from the diagonal blocks (exact when the coupling block is zero).

        It is a lower bound in general: the coupling can only widen the spectrum. Computing it
        exactly would cost O(p³) and defeat the point of the structure.
        """
        xp = self.backend.xp
        s = xp.concatenate([self.backend.svdvals(factor["A"]), abs(factor["D"])])
        return float(s.max() / s.min()) ** 2

    @property
    def default_learning_rate(self) -> float:
        """Geometric interpolation between SNES (K = 0, the diagonal group) and xNES (K = p, dense).

        It reproduces both end points exactly, so ``up:0``/``low:0`` behave as ``diag`` and
        ``up:p``/``low:p`` as ``dense`` step for step.
        """
        t = self.k / self.dim
        return snes_learning_rate(self.dim) ** (1.0 - t) * xnes_learning_rate(self.dim) ** t

    def num_parameters(self) -> int:
        k, d = self.k, self.dim - self.k
        return k * (k + 1) // 2 + k * d + d


def assemble(backend: Backend, blocks: list[list[Array]]) -> Array:
    xp = backend.xp
    return xp.concatenate([xp.concatenate(row, 1) for row in blocks], 0)


__all__ = ["BlockTriangular", "assemble"]
