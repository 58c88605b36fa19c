"""The interface every matrix group implements (MATH.md §1–§4).

A group object holds only the *structure* (dimension, block sizes) and the array backend. The
precision factor ``B`` itself is a plain ``dict`` of arrays (a *factor*), and a step in the group's
sub-algebra 𝓜 is another ``dict`` of arrays (a *tangent*). Methods are pure: they never modify their
inputs, so a state saved before a failed step is still intact.

Conventions (row form, as arrays of candidates are ``(n, p)``):

- ``sample(factor, z)`` returns ``x = z @ B⁻¹``, i.e. each row is ``B⁻ᵀ zᵢ``;
- ``whiten(factor, x)`` returns ``z = x @ B``, its inverse;
- ``natural_direction(z, u, shift)`` returns ``C ⊙ κ(Σᵢ uᵢ zᵢ zᵢᵀ − shift·I)``, forming only the
  entries that κ keeps;
- ``retract(factor, tangent, step)`` returns the factor of ``B · h(step · M)``, ``h(M) = I + M + ½M²``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from es_ngd.backend import Array, Backend

Factor = dict[str, Array]
Tangent = dict[str, Array]
HessianProducts = Callable[[Array], Array]  #: rows vⱼ (m, p) → rows H vⱼ (m, p)
HessianDiagonal = Callable[[], Array]  #: () → diag H (p,)

#: the structures whose groups implement :meth:`MatrixGroup.hessian_direction`
HESSIAN_STRUCTURES = "'dense', 'diag', 'tril', 'triu', 'up:K', 'low:K', 'hier:K1,K2', 'hier-up:K1,K2'"


class MatrixGroup(ABC):
    """A matrix Lie group that holds the precision factor B of ``N(μ, σ²(BBᵀ)⁻¹)``."""

    #: the structure string that names this group, e.g. ``"up:2"``
    structure: str

    def __init__(self, dim: int, backend: Backend) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dimension must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.backend = backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.structure!r}, dim={self.dim}, backend={self.backend.describe()})"

    # -- the small interface ----------------------------------------------------------------------
    @abstractmethod
    def identity(self, scale: float = 1.0) -> Factor:
        """The factor ``B = scale · I``."""

    @abstractmethod
    def sample(self, factor: Factor, z: Array) -> Array:
        """Rows ``B⁻ᵀ zᵢ`` for rows ``zᵢ`` of ``z`` (shape ``(n, p)``), without forming ``B⁻¹``."""

    @abstractmethod
    def whiten(self, factor: Factor, x: Array) -> Array:
        """Rows ``Bᵀ xᵢ``: the inverse of :meth:`sample`."""

    @abstractmethod
    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        """The exact natural-gradient direction ``C ⊙ κ(Σ uᵢ zᵢ zᵢᵀ − shift·I)`` (MATH.md §2–§3)."""

    @abstractmethod
    def magnitude(self, tangent: Tangent) -> float:
        """A cheap upper bound on the spectral norm of ``M`` (used by the step bound, MATH.md §5)."""

    @abstractmethod
    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        """The factor of ``B · h(step · M)``; it stays in the group and stays invertible."""

    @abstractmethod
    def logdet(self, factor: Factor) -> float:
        """``log |det B|``, from the diagonal blocks."""

    @abstractmethod
    def dense(self, factor: Factor) -> Array:
        """``B`` as a dense ``(p, p)`` array (tests and debugging; O(p²) memory)."""

    @abstractmethod
    def tangent_dense(self, tangent: Tangent) -> Array:
        """``M`` as a dense ``(p, p)`` array (tests and debugging)."""

    @property
    @abstractmethod
    def default_learning_rate(self) -> float:
        """Default ``η_B`` for this group (MATH.md §2)."""

    # -- derived quantities with generic (dense, O(p³)) defaults; groups override when cheaper ----
    def variances(self, factor: Factor) -> Array:
        """``diag((BBᵀ)⁻¹)``: the squared column norms of ``B⁻¹`` (generic: p solves)."""
        inv = self.sample(factor, self.backend.eye(self.dim))  # = B⁻¹
        return (inv * inv).sum(0)

    def condition_number(self, factor: Factor) -> float:
        """Condition number of ``S ∝ BBᵀ`` (generic: singular values of the dense ``B``)."""
        s = self.backend.svdvals(self.dense(factor))
        return float(s.max() / s.min()) ** 2

    def num_parameters(self) -> int:
        """Number of free entries of ``B`` (the dimension of 𝓜)."""
        return sum(int(math.prod(a.shape)) for a in self.natural_direction(
            self.backend.zeros((1, self.dim)), self.backend.zeros(1)).values())

    # -- second-order access (MATH.md §6, es_ngd.newton) -----------------------------------------
    def solve(self, factor: Factor, y: Array) -> Array:
        """Rows ``B⁻¹ yᵢ`` (``y @ B⁻ᵀ``): the transpose of :meth:`sample` (generic: a dense solve, O(p³)).

        ``S⁻¹ g = B⁻ᵀ B⁻¹ g`` is ``sample(factor, solve(factor, g))``; groups with block structure override.
        """
        return self.backend.xp.linalg.solve(self.dense(factor), y.T).T

    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        """``C ⊙ κ(B⁻¹ H B⁻ᵀ − shift·I)`` from Hessian-vector products, never forming ``H`` (MATH.md §6).

        ``hvp(V)`` takes rows ``vⱼ`` (shape ``(m, p)``) and returns the rows ``H vⱼ``; ``hess_diag()``
        returns ``diag H``. Each group calls only what its kept entries need: ``k`` (``up:K``/``low:K``)
        or ``K1 + K2`` (hierarchical) products plus the diagonal, ``p`` products for dense and triangular,
        the diagonal alone for ``diag``. The result has the shape of :meth:`natural_direction`'s.
        """
        raise NotImplementedError(
            f"structure {self.structure!r} has no Hessian access for the second-order method; "
            f"structures that have it: {HESSIAN_STRUCTURES}")


def xnes_learning_rate(dim: int) -> float:
    """xNES rate for a dense factor: ``(9 + 3 ln p) / (5 p^{3/2})``."""
    return (9.0 + 3.0 * math.log(dim)) / (5.0 * dim**1.5)


def snes_learning_rate(dim: int) -> float:
    """SNES rate for a diagonal factor: ``(3 + ln p) / (5 √p)``."""
    return (3.0 + math.log(dim)) / (5.0 * math.sqrt(dim))


def coupled_learning_rate(dim: int) -> float:
    """Rate for groups with a dense coupling block next to a diagonal one: ``1.5 η_SNES / √p``.

    A K×(p−K) coupling block of O(1) noise has a spectral norm that grows like √p; rates above this
    made block searches unstable (benchmarks/results/block_learning_rates.txt, and
    structured_learning_rates.txt for the hierarchical groups).
    """
    return min(snes_learning_rate(dim), 1.5 * snes_learning_rate(dim) / math.sqrt(dim))


def sym(a: Array) -> Array:
    """Symmetric part, against round-off (MATH.md §5)."""
    return 0.5 * (a + a.T)


def h_dense(backend: Backend, m: Array) -> Array:
    """``h(M) = I + M + ½ M²`` for a dense square block."""
    return backend.eye(m.shape[0]) + m + 0.5 * (m @ m)


def h_diag(m: Array) -> Array:
    """``h`` on the diagonal of a diagonal block, stored as a vector."""
    return 1.0 + m + 0.5 * m * m


def frobenius(a: Array) -> float:
    return float((a * a).sum()) ** 0.5


def max_abs(a: Array) -> float:
    return float(abs(a).max()) if math.prod(a.shape) else 0.0


def whitened_diagonal(hess_diag: Array, d: Array, coupling: Array | None = None, products: Array | None = None,
                      whitened: Array | None = None) -> Array:
    """``diag(B⁻¹HB⁻ᵀ)`` on a diagonal block whose columns of ``B⁻ᵀ`` are ``vᵢ = eᵢ/dᵢ + Σⱼ cᵢⱼ uⱼ`` (*derived*).

    ``uⱼ`` are the columns of ``B⁻ᵀ`` already multiplied by H (``products[j, i] = (H uⱼ)ᵢ`` on this block's
    indices, ``whitened = [uⱼᵀ H uₗ]``), ``coupling = [cᵢⱼ]``; then
    ``vᵢᵀ H vᵢ = Hᵢᵢ/dᵢ² + 2 cᵢ·(H u)ᵢ/dᵢ + cᵢᵀ W cᵢ``: the diagonal of H and no further product.
    """
    out = hess_diag / (d * d)
    if coupling is not None and coupling.shape[1]:
        out = out + 2.0 * (coupling * products.T).sum(1) / d + ((coupling @ whitened) * coupling).sum(1)
    return out


def unit_rows(backend: Backend, start: int, count: int, dim: int) -> Array:
    """Rows ``e_start … e_{start+count−1}`` of ``I_dim`` (O(count·dim), never the whole identity)."""
    xp = backend.xp
    return xp.concatenate([backend.zeros((count, start)), backend.eye(count),
                           backend.zeros((count, dim - start - count))], 1)
