"""The optional rank-one term: CMA-ES's evolution path ``p_c`` added to the B update (MATH.md §2b).

The exact natural gradient learns a long axis (cigar, Rosenbrock's valley) from one generation's
samples at a time, at η_B ∝ p^{−3/2} for dense B. CMA-ES learns it in O(p) generations from the
*path* of mean steps, ``C ← C + c₁(p_c p_cᵀ − C)``. In es_ngd's whitened frame that is the term
``c₁(p_c p_cᵀ − I)`` added to ``η_B·G`` before the trace is removed and κ and C are applied, so
every group takes the part of it that its structure can hold, through the same
``natural_direction`` as the main step (the direction is linear in the weighted outer products).

It is **not** the natural gradient of E[f]: with ``rank_one=False`` (exact mode) the B step is
exactly ``C ⊙ κ(G − tr(G)/p·I)``, which the Fisher-information tests check.

The path lives in x-space units of σ (``Σ_t (μ_{t+1} − μ_t)/(η_μ σ_t)``, discounted and normalised),
so it needs no transport when B changes: each generation whitens it with the current factor.
Constants are CMA-ES's (Hansen's tutorial, arXiv:1604.00772, Table 1):
``c_c = (4 + μ_eff/p)/(p + 4 + 2μ_eff/p)`` and ``c₁ = 2/((n + 1.3)² + μ_eff)``. In CMA-ES n = p, and
``(n + 1.3)²`` stands for about twice the number of free entries of C, p(p+1)/2. Here n is the
group's own number of free entries P, written the same way: ``n(n+1)/2 = P``. So n = p for dense B
(CMA-ES's c₁ exactly), and n ≈ √(2p) for a diagonal B, which gives about the size of sep-CMA's
raised c₁ (``×(p + 1.5)/3``). A structure with fewer entries to learn takes a larger share of each
path. Measured: benchmarks/results/step_size/rank_one_rate/.
"""

from __future__ import annotations

import math

from es_ngd.backend import Array, Backend
from es_ngd.groups.base import Factor, MatrixGroup, Tangent
from es_ngd.shaping import effective_selection_mass


def effective_dimension(num_parameters: int) -> float:
    """The n with n(n+1)/2 = ``num_parameters``: exactly p for a dense factor, since 8P + 1 = (2p + 1)²."""
    return (math.sqrt(8.0 * num_parameters + 1.0) - 1.0) / 2.0


class RankOnePath:
    """Constants of the rank-one term; its state is one p-vector (``State.evolution_path``)."""

    def __init__(self, dim: int, popsize: int, num_parameters: int | None = None) -> None:
        """``num_parameters``: the group's number of free entries (default p(p+1)/2, a dense factor's)."""
        mu_eff = effective_selection_mass(popsize)
        self.c_c = (4.0 + mu_eff / dim) / (dim + 4.0 + 2.0 * mu_eff / dim)
        n = dim if num_parameters is None else effective_dimension(num_parameters)
        self.c_1 = 2.0 / ((n + 1.3) ** 2 + mu_eff)
        self.path_weight = math.sqrt(self.c_c * (2.0 - self.c_c))

    def initial_path(self, backend: Backend, dim: int) -> Array:
        return backend.zeros(dim)

    def step(self, path: Array, group: MatrixGroup, factor: Factor, selected_step: Array | None,
             lr_factor: float) -> tuple[Tangent, Array]:
        """The rank-one tangent (to be added to the main direction) and the new path.

        ``selected_step`` is the normalised selected step that CSA's path takes too (None: nothing was
        selected); the tangent is scaled by ``c₁/η_B`` so that after the strategy multiplies it by
        ``η_B`` the term is ``c₁(p_c p_cᵀ − I)``.
        """
        path_z = (1.0 - self.c_c) * group.whiten(factor, path[None, :])
        if selected_step is not None:
            path_z = path_z + self.path_weight * selected_step[None, :]
        weight = self.c_1 / lr_factor
        shift = weight * float((path_z * path_z).sum()) / group.dim
        tangent = group.natural_direction(path_z, group.backend.asarray([weight]), shift)
        return tangent, group.sample(factor, path_z)[0]


__all__ = ["RankOnePath", "effective_dimension"]
