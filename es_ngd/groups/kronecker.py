"""Kronecker group ``kron(F1,F2)`` (MATH.md §4): ``B = B₁ ⊗ B₂`` with each factor from another group.

``x = vec(W)`` column-major with ``W`` of shape ``(rows, cols) = (p₂, p₁)``: ``B₁`` is ``cols×cols``
(group ``F1``) and ``B₂`` is ``rows×rows`` (group ``F2``). Sampling is ``W = B₂⁻ᵀ Z B₁⁻¹``, two
batched calls of the factors' own ``sample``; with dense factors the cost is O(n·p^{3/2}).

The tangent is ``M = M₁ ⊗ I + I ⊗ M₂``. With ``Zᵢ`` the noise rows as ``p₂×p₁`` matrices, the
gradient for ``M₁`` is ``G¹ = Σ uᵢ ZᵢᵀZᵢ`` and for ``M₂`` it is ``G² = Σ uᵢ ZᵢZᵢᵀ``. The Fisher
information ``½‖dM + dMᵀ‖²`` couples the factors only through ``tr M₁ tr M₂``, and the direction
``(I, −I)`` is null (``cB₁ ⊗ B₂/c = B₁ ⊗ B₂``). Solving ``F N = ∇`` (*derived*) gives the exact
pseudo-inverse direction

    ``Nₖ = Cₖ ⊙ κₖ(Gᵏ/p_other − ½(tr G/p + shift) I)``,

i.e. each factor's own natural direction of ``Gᵏ/p_other`` with the isotropic part ``½ tr/p``
removed from both factors (so their per-dimension log-scales move equally; with the strategy's
``shift = tr G/p`` the isotropic part goes entirely to σ).

The retraction is ``B₁h(sM₁) ⊗ B₂h(sM₂)``: it stays in the group, agrees with ``B·h(sM)`` to second
order in ``s`` (the difference is O(s³), as between ``h`` and ``exp``), because ``B·h(sM)`` itself
is in general not a Kronecker product. The factor dict holds each factor's arrays under the
prefixes ``"B1."`` and ``"B2."``; the tangent dict uses ``"M1."`` and ``"M2."``.
"""

from __future__ import annotations

import math
from typing import Any

from es_ngd.backend import Array
from es_ngd.groups.base import Factor, MatrixGroup, Tangent


def _prefixed(prefix: str, arrays: dict[str, Array]) -> dict[str, Array]:
    return {prefix + key: value for key, value in arrays.items()}


def _unprefixed(prefix: str, arrays: dict[str, Array]) -> dict[str, Array]:
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


class Kronecker(MatrixGroup):
    def __init__(self, first: MatrixGroup, second: MatrixGroup) -> None:
        """``first`` is the group of ``B₁`` (``cols×cols``), ``second`` that of ``B₂`` (``rows×rows``)."""
        if isinstance(first, Kronecker) or isinstance(second, Kronecker):
            raise ValueError("a kron factor cannot itself be a kron(...) group")
        super().__init__(first.dim * second.dim, first.backend)
        self.first, self.second = first, second
        self.shape = (second.dim, first.dim)  # (rows, cols) of W
        self.structure = f"kron({first.structure},{second.structure})"

    def __repr__(self) -> str:
        return f"Kronecker({self.structure!r}, shape={self.shape}, backend={self.backend.describe()})"

    def _factors(self, factor: Factor) -> tuple[Factor, Factor]:
        return _unprefixed("B1.", factor), _unprefixed("B2.", factor)

    def _tangents(self, tangent: Tangent) -> tuple[Tangent, Tangent]:
        return _unprefixed("M1.", tangent), _unprefixed("M2.", tangent)

    # Row ``z`` of length p read as ``Zᵀ`` (p₁×p₂, row-major) is ``vec(Z)`` column-major. The helpers
    # below turn a batch of such rows into the rows the factor groups act on.
    def _columns_of_w(self, x: Array) -> Array:
        """The columns of each ``W`` (length p₂) as rows: shape ``(n·p₁, p₂)``."""
        return x.reshape(x.shape[0] * self.first.dim, self.second.dim)

    def _rows_of_w(self, x: Array) -> Array:
        """The rows of each ``W`` (length p₁) as rows: shape ``(n·p₂, p₁)``."""
        n, (rows, cols) = x.shape[0], self.shape
        return x.reshape(n, cols, rows).swapaxes(1, 2).reshape(n * rows, cols)

    def _from_rows_of_w(self, rows_of_w: Array) -> Array:
        """Inverse of :meth:`_rows_of_w`: back to rows ``vec(W)``."""
        rows, cols = self.shape
        n = rows_of_w.shape[0] // rows
        return rows_of_w.reshape(n, rows, cols).swapaxes(1, 2).reshape(n, rows * cols)

    # -- the group interface ---------------------------------------------------------------------
    def identity(self, scale: float = 1.0) -> Factor:
        root = math.sqrt(abs(scale))  # split the scale evenly between the factors
        return {**_prefixed("B1.", self.first.identity(math.copysign(root, scale))),
                **_prefixed("B2.", self.second.identity(root))}

    def sample(self, factor: Factor, z: Array) -> Array:
        # W = B₂⁻ᵀ Z B₁⁻¹: each column of Z through B₂⁻ᵀ, then each row of the result through B₁⁻ᵀ
        f1, f2 = self._factors(factor)
        y = self.second.sample(f2, self._columns_of_w(z)).reshape(z.shape)  # vec(B₂⁻ᵀ Z)
        return self._from_rows_of_w(self.first.sample(f1, self._rows_of_w(y)))

    def whiten(self, factor: Factor, x: Array) -> Array:
        # Z = B₂ᵀ W B₁
        f1, f2 = self._factors(factor)
        y = self.second.whiten(f2, self._columns_of_w(x)).reshape(x.shape)
        return self._from_rows_of_w(self.first.whiten(f1, self._rows_of_w(y)))

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        rows, cols = self.shape
        trace_part = float(u @ (z * z).sum(1)) / self.dim  # tr(G)/p
        isotropic = 0.5 * (trace_part + shift)
        # G¹/p₂ = Σᵢ (uᵢ/p₂) Σ_rows r rᵀ over the rows r of Zᵢ; G²/p₁ likewise over its columns
        u_rows = (u[:, None] * self.backend.ones((1, rows))).reshape(-1) / rows
        u_columns = (u[:, None] * self.backend.ones((1, cols))).reshape(-1) / cols
        return {**_prefixed("M1.", self.first.natural_direction(self._rows_of_w(z), u_rows, isotropic)),
                **_prefixed("M2.", self.second.natural_direction(self._columns_of_w(z), u_columns, isotropic))}

    def magnitude(self, tangent: Tangent) -> float:
        # ‖M₁ ⊗ I + I ⊗ M₂‖₂ ≤ ‖M₁‖₂ + ‖M₂‖₂
        m1, m2 = self._tangents(tangent)
        return self.first.magnitude(m1) + self.second.magnitude(m2)

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        f1, f2 = self._factors(factor)
        m1, m2 = self._tangents(tangent)
        return {**_prefixed("B1.", self.first.retract(f1, m1, step)),
                **_prefixed("B2.", self.second.retract(f2, m2, step))}

    def logdet(self, factor: Factor) -> float:
        # det(B₁ ⊗ B₂) = det(B₁)^{p₂} det(B₂)^{p₁}
        f1, f2 = self._factors(factor)
        rows, cols = self.shape
        return rows * self.first.logdet(f1) + cols * self.second.logdet(f2)

    def variances(self, factor: Factor) -> Array:
        # (BBᵀ)⁻¹ = (B₁B₁ᵀ)⁻¹ ⊗ (B₂B₂ᵀ)⁻¹, so its diagonal is the outer product of the factors' diagonals
        f1, f2 = self._factors(factor)
        return (self.first.variances(f1)[:, None] * self.second.variances(f2)[None, :]).reshape(-1)

    def condition_number(self, factor: Factor) -> float:
        """The product of the factors' condition numbers (exact when theirs are: the singular values of
        ``B₁ ⊗ B₂`` are the products of the factors' singular values)."""
        f1, f2 = self._factors(factor)
        return self.first.condition_number(f1) * self.second.condition_number(f2)

    def dense(self, factor: Factor) -> Array:
        f1, f2 = self._factors(factor)
        return self.backend.xp.kron(self.first.dense(f1), self.second.dense(f2))

    def tangent_dense(self, tangent: Tangent) -> Array:
        bk, xp = self.backend, self.backend.xp
        m1, m2 = self._tangents(tangent)
        rows, cols = self.shape
        return (xp.kron(self.first.tangent_dense(m1), bk.eye(rows))
                + xp.kron(bk.eye(cols), self.second.tangent_dense(m2)))

    @property
    def default_learning_rate(self) -> float:
        """The smaller of the factors' own rates (at their own sizes).

        Each factor's gradient is an average over the other factor's ``p_other`` rows, so it is less
        noisy than its group's alone: on Kronecker quadratics with dense factors twice this rate
        converges in half the evaluations (4 times fails on one seed at p = 30), but with a factor
        that does not match the problem (diag or low:1 for a dense factor) twice this rate fails
        (benchmarks/results/structured_learning_rates.txt), so the default keeps the safe one.
        """
        return min(self.first.default_learning_rate, self.second.default_learning_rate)

    def num_parameters(self) -> int:
        # one less than the factors' together: the scale exchange (cI, −cI) is not a direction
        return self.first.num_parameters() + self.second.num_parameters() - 1
