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
    coupled_learning_rate,
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
        m_d = 0.5 * (u @ (zd * zd) - shift)
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
        """``η_B`` chosen by measurement (benchmarks/results/block_rates.txt).

        With K = 0 there is no coupling block and the group *is* the diagonal one: SNES's rate.
        The coupling block's noise grows like √p in spectral norm (a K×(p−K) block of O(1) entries),
        and rates above about ``1.5 η_SNES/√p`` made the search unstable (the step bound acting
        hundreds of times, the dense block collapsing), so for K ≥ 1 the rate starts there and moves
        geometrically to xNES's rate at K = p, where the group is the dense one. Both end points are
        exact, so ``up:0`` behaves as ``diag`` and ``up:p`` as ``dense`` step for step.
        """
        diag_rate, dense_rate = snes_learning_rate(self.dim), xnes_learning_rate(self.dim)
        if self.k == 0:
            return diag_rate
        coupled = coupled_learning_rate(self.dim)
        t = self.k / self.dim
        return coupled ** (1.0 - t) * dense_rate**t

    def num_parameters(self) -> int:
        k, d = self.k, self.dim - self.k
        return k * (k + 1) // 2 + k * d + d


def assemble(backend: Backend, blocks: list[list[Array]]) -> Array:
    xp = backend.xp
    return xp.concatenate([xp.concatenate(row, 1) for row in blocks], 0)


__all__ = ["BlockTriangular", "assemble"]
