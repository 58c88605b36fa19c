"""Hierarchical groups ``hier:K1,K2`` and its mirror ``hier-up:K1,K2`` (MATH.md §4), O((K1+K2)·n·p).

Three diagonal blocks of sizes ``K1``, ``d = p − K1 − K2`` and ``K2``: a dense ``B_A ∈ GL(K1)``, a
diagonal ``B_D`` and a dense ``B_4 ∈ GL(K2)``. ``hier`` is block lower-triangular::

    B = [[B_A, 0], [B_C, R]],   R = [[B_D, 0], [B_3, B_4]]

with ``B_C`` dense ``(p−K1)×K1`` and ``B_3`` dense ``K2×d``; ``hier-up`` is the transpose pattern
``B = [[B_A, B_C], [0, R]]``, ``R = [[B_D, B_3], [0, B_4]]`` (``B_C`` is ``K1×(p−K1)``, ``B_3`` is
``d×K2``). The tangent has the same pattern with ``M_A``, ``M_4`` symmetric and ``M_D`` diagonal;
``C = ½`` on those three blocks and ``C = 1`` on the coupling blocks ``C`` and ``3``. The factor
dict holds ``"A"``, ``"C"``, ``"D"`` (a vector), ``"3"``, ``"4"`` and the inverses ``"Ainv"``,
``"4inv"`` (recomputed from the blocks at every step, O(K1³ + K2³)).
"""

from __future__ import annotations

from typing import Any

from es_ngd.backend import Array, Backend
from es_ngd.groups._block import assemble
from es_ngd.groups.base import (
    Factor,
    HessianDiagonal,
    HessianProducts,
    MatrixGroup,
    Tangent,
    coupled_learning_rate,
    frobenius,
    h_dense,
    h_diag,
    max_abs,
    snes_learning_rate,
    sym,
    unit_rows,
    whitened_diagonal,
    xnes_learning_rate,
)


def _squared_column_norms(a: Array) -> Array:
    return (a * a).sum(0)


class _Hierarchical(MatrixGroup):
    prefix: str

    def __init__(self, dim: int, backend: Backend, k1: int, k2: int) -> None:
        super().__init__(dim, backend)
        if int(k1) != k1 or int(k2) != k2 or k1 < 0 or k2 < 0 or k1 + k2 > dim:
            raise ValueError(f"{self.prefix}:K1,K2 needs 0 <= K1, 0 <= K2 and K1 + K2 <= p = {dim}, "
                             f"got K1 = {k1!r}, K2 = {k2!r}")
        self.k1, self.k2 = int(k1), int(k2)
        self.d = dim - self.k1 - self.k2  # size of the diagonal middle block
        self.structure = f"{self.prefix}:{self.k1},{self.k2}"

    def _split(self, z: Array) -> tuple[Array, Array, Array]:
        """Columns of the A, D and 4 blocks."""
        k1, d = self.k1, self.d
        return z[:, :k1], z[:, k1:k1 + d], z[:, k1 + d:]

    def identity(self, scale: float = 1.0) -> Factor:
        bk, k1, k2, d = self.backend, self.k1, self.k2, self.d
        return {"A": scale * bk.eye(k1), "Ainv": bk.eye(k1) / scale, "C": self._coupling_zeros(),
                "D": scale * bk.ones(d), "3": self._block3_zeros(), "4": scale * bk.eye(k2),
                "4inv": bk.eye(k2) / scale}

    def _coupling_zeros(self) -> Array:
        raise NotImplementedError

    def _block3_zeros(self) -> Array:
        raise NotImplementedError

    def _diagonal_parts(self, z: Array, u: Array, shift: Any) -> dict[str, Array]:
        """``M_A``, ``M_D``, ``M_4`` (C = ½) and the blocks of ``z`` the couplings need."""
        bk = self.backend
        za, zd, z4 = self._split(z)
        uza, uz4 = za * u[:, None], z4 * u[:, None]
        return {"A": 0.5 * sym(uza.T @ za - shift * bk.eye(self.k1)),
                "D": 0.5 * (u @ (zd * zd) - shift),
                "4": 0.5 * sym(uz4.T @ z4 - shift * bk.eye(self.k2)),
                "uza": uza, "zd": zd, "uz4": uz4, "rest": z[:, self.k1:]}

    def magnitude(self, tangent: Tangent) -> float:
        # ‖[[A, 0], [C, R]]‖₂ ≤ max(‖A‖₂, ‖R‖₂) + ‖C‖₂ and ‖R‖₂ ≤ max(max|D|, ‖M_4‖₂) + ‖M_3‖₂
        rest = max(max_abs(tangent["D"]), frobenius(tangent["4"])) + frobenius(tangent["3"])
        return max(frobenius(tangent["A"]), rest) + frobenius(tangent["C"])

    def _new_factor(self, a: Array, c: Array, d: Array, b3: Array, b4: Array) -> Factor:
        inv = self.backend.xp.linalg.inv
        return {"A": a, "Ainv": inv(a), "C": c, "D": d, "3": b3, "4": b4, "4inv": inv(b4)}

    def logdet(self, factor: Factor) -> float:
        xp = self.backend.xp
        return float(xp.linalg.slogdet(factor["A"])[1] + xp.log(abs(factor["D"])).sum()
                     + xp.linalg.slogdet(factor["4"])[1])

    def condition_number(self, factor: Factor) -> float:
        """Estimate from the three diagonal blocks (exact when the couplings are zero).

        It is a lower bound in general, as for ``up:K``: the coupling blocks can only widen the
        spectrum, and the exact value would cost O(p³).
        """
        bk = self.backend
        s = bk.xp.concatenate([bk.svdvals(factor["A"]), abs(factor["D"]), bk.svdvals(factor["4"])])
        return float(s.max() / s.min()) ** 2

    @property
    def default_learning_rate(self) -> float:
        """``1.5 η_SNES/√p``, as measured for ``up:K``/``low:K`` (block_learning_rates.txt); SNES's without
        dense blocks, and xNES's without a diagonal block (then it has as many parameters as dense).

        Measured on arrow-shaped quadratics (benchmarks/results/structured_learning_rates.txt): at
        p = 25 and 58, 1.5 times ``η_SNES/√p`` converges on both seeds and 2.5 times fails (one seed
        at p = 25, both at p = 58); 1.0 times needs about 45 % more evaluations.
        """
        p = self.dim
        if self.k1 + self.k2 == 0:
            return snes_learning_rate(p)
        if self.d == 0:
            return xnes_learning_rate(p)
        return coupled_learning_rate(p)

    def num_parameters(self) -> int:
        k1, k2, d = self.k1, self.k2, self.d
        return k1 * (k1 + 1) // 2 + k1 * (d + k2) + d + k2 * d + k2 * (k2 + 1) // 2


class HierarchicalLower(_Hierarchical):
    """``hier:K1,K2``: ``B = [[B_A, 0], [B_C, R]]`` with ``R = [[B_D, 0], [B_3, B_4]]``."""

    prefix = "hier"

    def _coupling_zeros(self) -> Array:
        return self.backend.zeros((self.dim - self.k1, self.k1))

    def _block3_zeros(self) -> Array:
        return self.backend.zeros((self.k2, self.d))

    def _rest_times(self, d: Array, b3: Array, b4: Array, x: Array) -> Array:
        """``R @ x`` for ``R = [[diag(d), 0], [b3, b4]]`` and ``x`` with ``p − K1`` rows."""
        xd, x4 = x[:self.d], x[self.d:]
        return self.backend.xp.concatenate([d[:, None] * xd, b3 @ xd + b4 @ x4], 0)

    def sample(self, factor: Factor, z: Array) -> Array:
        # back-substitution on Bᵀ from the last block up (row form):
        # x_4 = B_4⁻ᵀ z_4 ;  x_D = B_D⁻¹ (z_D − B_3ᵀ x_4) ;  x_A = B_A⁻ᵀ (z_A − B_Cᵀ [x_D; x_4])
        xp = self.backend.xp
        za, zd, z4 = self._split(z)
        x4 = z4 @ factor["4inv"]
        xd = (zd - x4 @ factor["3"]) / factor["D"]
        xrest = xp.concatenate([xd, x4], 1)
        xa = (za - xrest @ factor["C"]) @ factor["Ainv"]
        return xp.concatenate([xa, xrest], 1)

    def whiten(self, factor: Factor, x: Array) -> Array:
        xa, xd, x4 = self._split(x)
        za = xa @ factor["A"] + x[:, self.k1:] @ factor["C"]
        zd = xd * factor["D"] + x4 @ factor["3"]
        return self.backend.xp.concatenate([za, zd, x4 @ factor["4"]], 1)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        parts = self._diagonal_parts(z, u, shift)
        return {"A": parts["A"], "C": parts["rest"].T @ parts["uza"],  # Σ u z_rest z_Aᵀ, C = 1
                "D": parts["D"], "3": parts["uz4"].T @ parts["zd"],  # Σ u z_4 z_Dᵀ, C = 1
                "4": parts["4"]}

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = [[h(M_A), 0], [H_C, h(M_R)]] with h(M_R) = [[h(M_D), 0], [H_3, h(M_4)]],
        # H_3 = M_3 + ½(M_3 M_D + M_4 M_3),  H_C = M_C + ½(M_C M_A + M_R M_C)
        m_a, m_c, m_d, m_3, m_4 = (step * tangent[key] for key in ("A", "C", "D", "3", "4"))
        h_a, h_d, h_4 = h_dense(self.backend, m_a), h_diag(m_d), h_dense(self.backend, m_4)
        h_3 = m_3 + 0.5 * (m_3 * m_d[None, :] + m_4 @ m_3)
        h_c = m_c + 0.5 * (m_c @ m_a + self._rest_times(m_d, m_3, m_4, m_c))
        d, b3, b4 = factor["D"], factor["3"], factor["4"]
        return self._new_factor(factor["A"] @ h_a,
                                factor["C"] @ h_a + self._rest_times(d, b3, b4, h_c),
                                d * h_d,
                                b3 * h_d[None, :] + b4 @ h_3,
                                b4 @ h_4)

    def variances(self, factor: Factor) -> Array:
        # B⁻¹ = [[B_A⁻¹, 0], [−R⁻¹ B_C B_A⁻¹, R⁻¹]],  R⁻¹ = [[B_D⁻¹, 0], [−B_4⁻¹ B_3 B_D⁻¹, B_4⁻¹]]
        ainv, b4inv, d = factor["Ainv"], factor["4inv"], factor["D"]
        x = factor["C"] @ ainv
        y_d = x[:self.d] / d[:, None]
        y_4 = b4inv @ (x[self.d:] - factor["3"] @ y_d)  # [y_d; y_4] = R⁻¹ B_C B_A⁻¹
        var_a = _squared_column_norms(ainv) + _squared_column_norms(y_d) + _squared_column_norms(y_4)
        var_d = (1.0 + _squared_column_norms(b4inv @ factor["3"])) / (d * d)
        return self.backend.xp.concatenate([var_a, var_d, _squared_column_norms(b4inv)])

    def dense(self, factor: Factor) -> Array:
        bk, k1, k2, d = self.backend, self.k1, self.k2, self.d
        rest = assemble(bk, [[bk.xp.diag(factor["D"]), bk.zeros((d, k2))], [factor["3"], factor["4"]]])
        return assemble(bk, [[factor["A"], bk.zeros((k1, d + k2))], [factor["C"], rest]])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.dense(tangent)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        # B⁻¹ y: x_A = B_A⁻¹ y_A ;  r = y_rest − B_C x_A ;  x_D = B_D⁻¹ r_D ;  x_4 = B_4⁻¹ (r_4 − B_3 x_D)
        k1, d = self.k1, self.d
        xa = y[:, :k1] @ factor["Ainv"].T
        r = y[:, k1:] - xa @ factor["C"].T
        xd = r[:, :d] / factor["D"]
        x4 = (r[:, d:] - xd @ factor["3"].T) @ factor["4inv"].T
        return self.backend.xp.concatenate([xa, xd, x4], 1)

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # K1 + K2 products with the columns of B⁻ᵀ of the A and 4 blocks give those rows of W = B⁻¹HB⁻ᵀ;
        # the middle columns are vᵢ = eᵢ/dᵢ − Σⱼ (B_C)ᵢⱼ/dᵢ uⱼ (uⱼ the A columns): W_ii from diag H
        return _hierarchical_direction(self, factor, hvp, hess_diag, shift, lower=True)


class HierarchicalUpper(_Hierarchical):
    """``hier-up:K1,K2``: ``B = [[B_A, B_C], [0, R]]`` with ``R = [[B_D, B_3], [0, B_4]]``."""

    prefix = "hier-up"

    def _coupling_zeros(self) -> Array:
        return self.backend.zeros((self.k1, self.dim - self.k1))

    def _block3_zeros(self) -> Array:
        return self.backend.zeros((self.d, self.k2))

    def _times_rest(self, x: Array, d: Array, b3: Array, b4: Array) -> Array:
        """``x @ R`` for ``R = [[diag(d), b3], [0, b4]]`` and ``x`` with ``p − K1`` columns."""
        xd, x4 = x[:, :self.d], x[:, self.d:]
        return self.backend.xp.concatenate([xd * d[None, :], xd @ b3 + x4 @ b4], 1)

    def sample(self, factor: Factor, z: Array) -> Array:
        # forward substitution on Bᵀ (row form):
        # x_A = B_A⁻ᵀ z_A ;  x_D = B_D⁻¹ (z_D − B_C,Dᵀ x_A) ;  x_4 = B_4⁻ᵀ (z_4 − B_C,4ᵀ x_A − B_3ᵀ x_D)
        za, zd, z4 = self._split(z)
        c = factor["C"]
        xa = za @ factor["Ainv"]
        xd = (zd - xa @ c[:, :self.d]) / factor["D"]
        x4 = (z4 - xa @ c[:, self.d:] - xd @ factor["3"]) @ factor["4inv"]
        return self.backend.xp.concatenate([xa, xd, x4], 1)

    def whiten(self, factor: Factor, x: Array) -> Array:
        xa = x[:, :self.k1]
        za = xa @ factor["A"]
        zrest = xa @ factor["C"] + self._times_rest(x[:, self.k1:], factor["D"], factor["3"], factor["4"])
        return self.backend.xp.concatenate([za, zrest], 1)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        parts = self._diagonal_parts(z, u, shift)
        return {"A": parts["A"], "C": parts["uza"].T @ parts["rest"],  # Σ u z_A z_restᵀ, C = 1
                "D": parts["D"], "3": parts["zd"].T @ parts["uz4"],  # Σ u z_D z_4ᵀ, C = 1
                "4": parts["4"]}

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = [[h(M_A), H_C], [0, h(M_R)]] with h(M_R) = [[h(M_D), H_3], [0, h(M_4)]],
        # H_3 = M_3 + ½(M_D M_3 + M_3 M_4),  H_C = M_C + ½(M_A M_C + M_C M_R)
        m_a, m_c, m_d, m_3, m_4 = (step * tangent[key] for key in ("A", "C", "D", "3", "4"))
        h_a, h_d, h_4 = h_dense(self.backend, m_a), h_diag(m_d), h_dense(self.backend, m_4)
        h_3 = m_3 + 0.5 * (m_d[:, None] * m_3 + m_3 @ m_4)
        h_c = m_c + 0.5 * (m_a @ m_c + self._times_rest(m_c, m_d, m_3, m_4))
        a, d, b3, b4 = factor["A"], factor["D"], factor["3"], factor["4"]
        return self._new_factor(a @ h_a,
                                a @ h_c + self._times_rest(factor["C"], h_d, h_3, h_4),
                                d * h_d,
                                d[:, None] * h_3 + b3 @ h_4,
                                b4 @ h_4)

    def variances(self, factor: Factor) -> Array:
        # B⁻¹ = [[B_A⁻¹, −B_A⁻¹ B_C R⁻¹], [0, R⁻¹]],  R⁻¹ = [[B_D⁻¹, −B_D⁻¹ B_3 B_4⁻¹], [0, B_4⁻¹]]
        ainv, b4inv, d = factor["Ainv"], factor["4inv"], factor["D"]
        x = ainv @ factor["C"]
        y_d = x[:, :self.d] / d[None, :]
        y_4 = (x[:, self.d:] - y_d @ factor["3"]) @ b4inv  # [y_d, y_4] = B_A⁻¹ B_C R⁻¹
        var_d = _squared_column_norms(y_d) + 1.0 / (d * d)
        var_4 = (_squared_column_norms(y_4) + _squared_column_norms((factor["3"] / d[:, None]) @ b4inv)
                 + _squared_column_norms(b4inv))
        return self.backend.xp.concatenate([_squared_column_norms(ainv), var_d, var_4])

    def dense(self, factor: Factor) -> Array:
        bk, k1, k2, d = self.backend, self.k1, self.k2, self.d
        rest = assemble(bk, [[bk.xp.diag(factor["D"]), factor["3"]], [bk.zeros((k2, d)), factor["4"]]])
        return assemble(bk, [[factor["A"], factor["C"]], [bk.zeros((d + k2, k1)), rest]])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self.dense(tangent)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        # B⁻¹ y: x_4 = B_4⁻¹ y_4 ;  x_D = B_D⁻¹ (y_D − B_3 x_4) ;  x_A = B_A⁻¹ (y_A − B_C [x_D; x_4])
        k1, d, xp = self.k1, self.d, self.backend.xp
        x4 = y[:, k1 + d:] @ factor["4inv"].T
        xd = (y[:, k1:k1 + d] - x4 @ factor["3"].T) / factor["D"]
        xrest = xp.concatenate([xd, x4], 1)
        return xp.concatenate([(y[:, :k1] - xrest @ factor["C"].T) @ factor["Ainv"].T, xrest], 1)

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # as for hier, but the middle columns of B⁻ᵀ are vᵢ = eᵢ/dᵢ − Σⱼ (B_3)ᵢⱼ/dᵢ uⱼ with uⱼ the 4 columns
        return _hierarchical_direction(self, factor, hvp, hess_diag, shift, lower=False)


def _hierarchical_direction(group: _Hierarchical, factor: Factor, hvp: HessianProducts,
                            hess_diag: HessianDiagonal, shift: Any, *, lower: bool) -> Tangent:
    """``C ⊙ κ(B⁻¹HB⁻ᵀ − shift·I)`` for both hierarchical groups from ``K1 + K2`` products and ``diag H``."""
    bk, k1, k2, d, p = group.backend, group.k1, group.k2, group.d, group.dim
    units = bk.xp.concatenate([unit_rows(bk, 0, k1, p), unit_rows(bk, k1 + d, k2, p)], 0)
    hu = hvp(group.sample(factor, units))  # H times the A and 4 columns of B⁻ᵀ
    w = group.solve(factor, hu)  # the A and 4 rows of W
    wa, w4 = w[:k1], w[k1:]
    if lower:  # the middle columns couple to the A columns through B_C's first d rows
        coupling, products, whitened = -factor["C"][:d] / factor["D"][:, None], hu[:k1, k1:k1 + d], wa[:, :k1]
    else:  # ... and to the 4 columns through B_3
        coupling, products, whitened = -factor["3"] / factor["D"][:, None], hu[k1:, k1:k1 + d], w4[:, k1 + d:]
    diagonal = whitened_diagonal(hess_diag()[k1:k1 + d], factor["D"], coupling, products, whitened)
    return {"A": 0.5 * sym(wa[:, :k1] - shift * bk.eye(k1)),
            "C": wa[:, k1:].T if lower else wa[:, k1:],  # W_rest,A (hier) or W_A,rest (hier-up), C = 1
            "D": 0.5 * (diagonal - shift),
            "3": w4[:, k1:k1 + d] if lower else w4[:, k1:k1 + d].T,  # W_4,D or W_D,4, C = 1
            "4": 0.5 * sym(w4[:, k1 + d:] - shift * bk.eye(k2))}
