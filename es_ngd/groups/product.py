"""Direct product of groups on consecutive blocks of coordinates: ``B = blockdiag(B₁, …, B_k)``.

Written ``product(F1@N1, F2@N2, …)``: block ``j`` holds ``Nⱼ`` consecutive coordinates and its own
group ``Fⱼ`` (any structure but another product); a Kronecker block takes a matrix shape instead of a
size, ``kron(tril,tril)@ROWSxCOLS`` (its coordinates are ``vec(W)`` column-major, as for ``kron``
alone). The sizes must add up to ``p``. This is the per-layer structure of a network's parameters:
``kron(F1,F2)`` for each weight matrix, ``diag`` for each bias (:mod:`es_ngd.gym` builds it from a
policy's layer shapes).

Exactness (*derived*): 𝓜 is the block-diagonal sum of the blocks' sub-algebras, so the Fisher
information ``½‖dM + dMᵀ‖²`` of a block-diagonal ``dM`` is the sum of the blocks' own, and the gradient
for block ``j`` depends only on the diagonal block ``Gⱼⱼ = Σ uᵢ zᵢⱼ zᵢⱼᵀ`` of the whitened gradient.
Each block's exact natural direction (or pseudo-inverse direction, for a Kronecker block) of
``Gⱼⱼ − shift·I`` is therefore the exact natural direction of the product. Sampling, whitening,
retraction, solves and Hessian access act block by block; ``log|det B|`` is the sum of the blocks';
``‖M‖₂`` is the largest of the blocks' (so the magnitude bound is the largest of theirs); the
variances are the blocks' concatenated. Factor and tangent arrays of block ``j`` are stored under the
prefix ``"j."``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from es_ngd.backend import Array
from es_ngd.groups.base import Factor, HessianDiagonal, HessianProducts, MatrixGroup, Tangent


def block_size_spec(group: MatrixGroup) -> str:
    """How a block's size is written after its structure: ``ROWSxCOLS`` for a Kronecker block, else ``N``."""
    shape = getattr(group, "shape", None)
    return f"{shape[0]}x{shape[1]}" if shape is not None else str(group.dim)


class Product(MatrixGroup):
    def __init__(self, blocks: Sequence[MatrixGroup]) -> None:
        blocks = tuple(blocks)
        if not blocks:
            raise ValueError("a product structure needs at least one block")
        if any(isinstance(block, Product) for block in blocks):
            raise ValueError("a product block cannot itself be a product(...) group: list its blocks instead")
        backend = blocks[0].backend
        if any(block.backend.describe() != backend.describe() for block in blocks):
            raise ValueError("the blocks of a product group must share one backend")
        super().__init__(sum(block.dim for block in blocks), backend)
        self.blocks = blocks
        starts = [0]
        for block in blocks:
            starts.append(starts[-1] + block.dim)
        self.slices = tuple(slice(a, b) for a, b in itertools.pairwise(starts))
        self.structure = "product(" + ",".join(f"{b.structure}@{block_size_spec(b)}" for b in blocks) + ")"

    def __repr__(self) -> str:
        return f"Product({self.structure!r}, dim={self.dim}, backend={self.backend.describe()})"

    # -- splitting the dicts and the rows by block ------------------------------------------------
    @staticmethod
    def _part(arrays: dict[str, Array], j: int) -> dict[str, Array]:
        prefix = f"{j}."
        return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}

    @staticmethod
    def _join(parts: Sequence[dict[str, Array]]) -> dict[str, Array]:
        return {f"{j}.{key}": value for j, part in enumerate(parts) for key, value in part.items()}

    def _rowwise(self, method: str, factor: Factor, rows: Array) -> Array:
        """Apply the blocks' ``method(factor_j, rows[:, block j])`` and put the results side by side."""
        return self.backend.xp.concatenate(
            [getattr(block, method)(self._part(factor, j), rows[:, sl])
             for j, (block, sl) in enumerate(zip(self.blocks, self.slices, strict=True))], 1)

    def _block_diagonal(self, parts: Sequence[Array]) -> Array:
        out = self.backend.zeros((self.dim, self.dim))
        for sl, part in zip(self.slices, parts, strict=True):
            out[sl, sl] = part
        return out

    # -- the group interface ---------------------------------------------------------------------
    def identity(self, scale: float = 1.0) -> Factor:
        return self._join([block.identity(scale) for block in self.blocks])

    def sample(self, factor: Factor, z: Array) -> Array:
        return self._rowwise("sample", factor, z)

    def whiten(self, factor: Factor, x: Array) -> Array:
        return self._rowwise("whiten", factor, x)

    def solve(self, factor: Factor, y: Array) -> Array:
        return self._rowwise("solve", factor, y)

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        return self._join([block.natural_direction(z[:, sl], u, shift)
                           for block, sl in zip(self.blocks, self.slices, strict=True)])

    def magnitude(self, tangent: Tangent) -> float:
        # the spectral norm of a block-diagonal matrix is the largest of its blocks'
        return max(block.magnitude(self._part(tangent, j)) for j, block in enumerate(self.blocks))

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        return self._join([block.retract(self._part(factor, j), self._part(tangent, j), step)
                           for j, block in enumerate(self.blocks)])

    def logdet(self, factor: Factor) -> float:
        return sum(block.logdet(self._part(factor, j)) for j, block in enumerate(self.blocks))

    def variances(self, factor: Factor) -> Array:
        return self.backend.xp.concatenate([block.variances(self._part(factor, j))
                                            for j, block in enumerate(self.blocks)])

    def condition_number(self, factor: Factor) -> float:
        """A lower bound on the condition number of ``S``: the largest of the blocks' own estimates and
        the spread of the variances (the diagonal of ``S⁻¹`` lies between its extreme eigenvalues).

        Exact when every block is diagonal; the blocks' extreme eigenvalues themselves are not part of
        the group interface, so across blocks with correlations it is a bound, like the block groups'.
        """
        variances = self.variances(factor)
        spread = float(variances.max() / variances.min())
        return max(spread, *(block.condition_number(self._part(factor, j)) for j, block in enumerate(self.blocks)))

    def dense(self, factor: Factor) -> Array:
        return self._block_diagonal([block.dense(self._part(factor, j)) for j, block in enumerate(self.blocks)])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self._block_diagonal([block.tangent_dense(self._part(tangent, j))
                                     for j, block in enumerate(self.blocks)])

    @property
    def default_learning_rate(self) -> float:
        """The smallest of the blocks' own rates (at their own sizes); ``lr_factor`` overrides it."""
        return min(block.default_learning_rate for block in self.blocks)

    def num_parameters(self) -> int:
        return sum(block.num_parameters() for block in self.blocks)

    # -- second-order access (MATH.md §6) ---------------------------------------------------------
    def hessian_direction(self, factor: Factor, hvp: HessianProducts, hess_diag: HessianDiagonal,
                          shift: Any = 1.0) -> Tangent:
        # B is block-diagonal, so block j of B⁻¹HB⁻ᵀ is Bⱼ⁻¹ Hⱼⱼ Bⱼ⁻ᵀ: each block sees H's diagonal block,
        # through products with vectors that are zero outside it
        diagonal: list[Array] = []

        def block_diag(sl: slice) -> HessianDiagonal:
            def get() -> Array:
                if not diagonal:
                    diagonal.append(hess_diag())
                return diagonal[0][sl]
            return get

        def block_hvp(sl: slice) -> HessianProducts:
            def products(v: Array) -> Array:
                padded = self.backend.zeros((v.shape[0], self.dim))
                padded[:, sl] = v
                return hvp(padded)[:, sl]
            return products

        return self._join([block.hessian_direction(self._part(factor, j), block_hvp(sl), block_diag(sl), shift)
                           for j, (block, sl) in enumerate(zip(self.blocks, self.slices, strict=True))])
