"""The structured benchmark problems: objectives whose curvature has the structure of one group family.

The generic functions (:mod:`~es_ngd.bench.functions`) have dense or separable curvature, where a
full covariance (CMA-ES) or a diagonal one (sep-CMA-ES) is the right model. These problems are what
the structured groups of MATH.md §4 exist for: their Hessian at the optimum is, exactly, ``2 B Bᵀ``
for a factor ``B`` *in* the group named in :attr:`StructuredSpec.fits`, so that group can represent
the ideal search distribution ``N(x_opt, σ² (BBᵀ)⁻¹)`` with ``O(p)`` to ``O(p^{3/2})`` parameters,
where a full covariance has ``p²/2`` to learn.

Every problem is ``f(x) = outer(Bᵀ(x − x_opt))``, a seeded structured factor ``B`` (one class per
group family below, each applying ``z ↦ Bᵀz`` to a whole population in ``O(p·band)`` or
``O(p^{3/2})``, never forming a ``p×p`` matrix) followed by ``outer``: the sum of squares for the
quadratics, a Rosenbrock-like chain or a logistic loss for the non-quadratic ones. ``outer`` has its
minimum 0 at 0 only, and a diagonal Hessian there, so the Hessian of ``f`` at ``x_opt`` is
``B diag(outer'') Bᵀ``, which has ``B``'s group pattern (a diagonal on the right stays in every group).

Instances are seeded exactly like the generic functions (``x_opt ~ U[-3, 3]^p``, ``x0 ~ U[-4, 4]^p``
from the same streams), and every coupling block whose length grows with ``p`` is scaled by
``1/√length``, so that a problem's conditioning (about 10³–10⁵, measured at p = 100 and 1000) does
not grow with ``p``; only the AR problem's grows, towards the bound its AR polynomial sets (10²–10⁴).

=====================  ========================================================  ===================
problem                Hessian at x_opt (``H``)                                  fitting structure
=====================  ========================================================  ===================
``arrow``              ``2LLᵀ``, ``L`` in ``hier:2,3``: dense first 2 and last 3  ``hier:2,3``
                       rows and columns; eliminating the first 2 leaves a
                       diagonal middle with the last 3 rows and columns dense
``arrow-rosenbrock``   the same pattern; a Rosenbrock-like chain                 ``hier:2,3``
                       ``Σ vᵢ² + 100 (vᵢ₊₁ − vᵢ²)²`` in ``v = Lᵀ(x − x_opt)``
``kron-quadratic``     ``2 B ⊗ A`` (``tr((W−W*)ᵀ A (W−W*) Bᵀ)``, ``x = vec W``)  ``kron(dense,dense)``
``kron-logistic``      ``¼ B ⊗ A``: a weighted logistic loss of a bilinear model  ``kron(dense,dense)``
                       ``aᵢᵀ W bⱼ`` on the full design of ``2·rows`` row and
                       ``2·cols`` column feature vectors
``ar-toeplitz``        ``2BBᵀ``, ``B`` lower-triangular banded Toeplitz            ``toeplitz``
                       ``(1, −φ₁, −φ₂)``: an AR(2) smoothing prior, banded
                       Toeplitz except its first 2 rows and columns
``sparse-cholesky``    ``2BBᵀ``, ``B`` in ``sparse:N1,N2`` (MATH.md §4)           ``sparse:N1,N2``
``lowrank-precision``  ``2 (diag(0, 0, 0, d) + VVᵀ)``, ``V`` of rank 3             ``low:3``
``lowrank-covariance`` ``H⁻¹ = ½ (diag(0, 0, 0, δ) + WWᵀ)``, ``W`` of rank 3: an  ``up:3``
                       arrow precision, dense first 3 rows and columns around
                       a diagonal
=====================  ========================================================  ===================

``dense`` and ``tril`` fit every problem too (any precision has a Cholesky factor), at ``O(p³)`` per
generation; the table lists the structures made for each one. For a kron problem ``p`` must factor
as ``rows × cols`` with both at least 2 (the pair closest to square is used: 10×10 at p = 100,
25×40 at p = 1000), and es_ngd is given that matrix shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from es_ngd.bench.functions import OPTIMUM_HALF_WIDTH, Problem, instance_streams, random_rotation

#: dense head and tail block sizes of the arrow problems, and the rank of the low-rank ones
ARROW_K1, ARROW_K2 = 2, 3
LOW_RANK = 3
#: size of the dense middle block of the sparse Cholesky problem (at most; smaller when p is small)
SPARSE_N2 = 10
#: Rosenbrock's valley weight in the arrow-rosenbrock chain
CHAIN_WEIGHT = 100.0
#: the logistic problem's scores aᵢᵀ W* bⱼ are scaled to this standard deviation: large enough to be
#: far from a quadratic, small enough that the sample weights (≤ 1/(4σ'(s))) stay moderate
LOGISTIC_SCORE_STD = 1.5


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return 10.0 ** rng.uniform(low, high, size)


def _ellipsoid_cholesky(k: int, condition: float, rng: np.random.Generator) -> np.ndarray:
    """Lower Cholesky factor of a randomly rotated ``k×k`` ellipsoid Hessian with that condition number."""
    if k == 1:
        return np.ones((1, 1))
    q = random_rotation(k, rng)
    return np.linalg.cholesky((q * condition ** (np.arange(k) / (k - 1))) @ q.T)


# -- structured factors: rows z ↦ (Bᵀz)ᵀ = zᵀB for a population Z, and B itself (for tests) -------------

class HierFactor:
    """``B = [[A, 0, 0], [C_m, D, 0], [C_t, E, F]]`` in ``hier:K1,K2``: ``A`` (K1×K1) and ``F`` (K2×K2)
    lower-triangular, ``D`` diagonal, ``C_m``, ``C_t``, ``E`` dense. ``BBᵀ`` has dense first K1 and last
    K2 rows and columns; its Schur complement on the rest is ``[[D², DEᵀ], [ED, EEᵀ + FFᵀ]]``."""

    def __init__(self, dim: int, rng: np.random.Generator, k1: int = ARROW_K1, k2: int = ARROW_K2) -> None:
        m = dim - k1 - k2
        self.k1, self.k2 = k1, k2
        self.a = _ellipsoid_cholesky(k1, 1e2, rng)
        self.d = _log_uniform(rng, 0.0, 1.5, m)
        # the head couples to all m middle variables and the tail to all p − K2 others: scaled by
        # 1/√length, so that the couplings act together, as strongly (and as conditioned) at every p
        self.c_mid = 3.0 * rng.standard_normal((m, k1)) / math.sqrt(max(m, 1))
        self.c_tail = 3.0 * rng.standard_normal((k2, k1)) / math.sqrt(k1 + m)
        self.e = 3.0 * rng.standard_normal((k2, m)) / math.sqrt(k1 + m)
        self.f = _ellipsoid_cholesky(k2, 1e2, rng)

    def apply(self, z: np.ndarray) -> np.ndarray:
        k1, k2 = self.k1, self.k2
        head, mid, tail = z[:, :k1], z[:, k1:-k2 or None], z[:, z.shape[1] - k2:]
        return np.hstack([head @ self.a + mid @ self.c_mid + tail @ self.c_tail,
                          mid * self.d + tail @ self.e, tail @ self.f])

    def dense(self) -> np.ndarray:
        m = len(self.d)
        k1 = self.k1
        b = np.zeros((k1 + m + self.k2,) * 2)
        b[:k1, :k1] = self.a
        b[k1:k1 + m, :k1], b[k1:k1 + m, k1:k1 + m] = self.c_mid, np.diag(self.d)
        b[k1 + m:, :k1], b[k1 + m:, k1:k1 + m], b[k1 + m:, k1 + m:] = self.c_tail, self.e, self.f
        return b


def matrix_shape(dim: int) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows·cols = dim``, ``2 <= rows <= cols``, as close to square as possible."""
    for rows in range(math.isqrt(dim), 1, -1):
        if dim % rows == 0:
            return rows, dim // rows
    raise ValueError(f"a kron problem needs p = rows·cols with rows, cols >= 2; p = {dim} does not factor")


class KronFactor:
    """``Bᵀ vec(W) = vec(Paᵀ W Pb)`` (``B = Pb ⊗ Pa``) for ``x = vec(W)`` column-major, ``W`` rows×cols:
    ``BBᵀ = (Pb Pbᵀ) ⊗ (Pa Paᵀ)``. ``Pa`` is ``rows×na``, ``Pb`` ``cols×nb`` (square for the quadratic;
    wider for the logistic loss, whose outputs are the scores of ``na·nb`` samples)."""

    def __init__(self, shape: tuple[int, int], pa: np.ndarray, pb: np.ndarray) -> None:
        self.shape, self.pa, self.pb = shape, pa, pb

    def apply(self, z: np.ndarray) -> np.ndarray:
        rows, cols = self.shape
        w = z.reshape(len(z), cols, rows).transpose(0, 2, 1)  # column-major vec → (n, rows, cols)
        scores = self.pa.T @ w @ self.pb  # (n, na, nb)
        return scores.transpose(0, 2, 1).reshape(len(z), -1)  # vec again, column-major

    def dense(self) -> np.ndarray:
        return np.kron(self.pb, self.pa)


class ToeplitzFactor:
    """``B`` lower-triangular banded Toeplitz with first column ``(b₀, …, b_k, 0, …)``:
    ``(Bᵀz)ₘ = Σⱼ bⱼ z_{m+j}`` (``z`` beyond ``p`` is 0), ``O(p·k)``."""

    def __init__(self, coefficients: np.ndarray) -> None:
        self.b = np.asarray(coefficients, dtype=float)

    def apply(self, z: np.ndarray) -> np.ndarray:
        out = self.b[0] * z
        for j, coefficient in enumerate(self.b[1:], start=1):
            out[:, :-j] += coefficient * z[:, j:]
        return out

    def dense_for(self, dim: int) -> np.ndarray:
        b = np.zeros((dim, dim))
        for j, coefficient in enumerate(self.b):
            b += coefficient * np.eye(dim, k=-j)
        return b


class SparseFactor:
    """``B = [[D1, 0, 0], [A, T, 0], [D2, 0, D3]]`` in ``sparse:N1,N2`` (``D*`` diagonal ``N1×N1``, ``A``
    dense ``N2×N1``, ``T`` lower-triangular): ``BBᵀ`` has dense middle rows and columns, diagonal
    first and last blocks, coupled to each other entry by entry (``i ↔ i + N1 + N2``)."""

    def __init__(self, n1: int, n2: int, rng: np.random.Generator) -> None:
        self.n1, self.n2 = n1, n2
        self.d1 = _log_uniform(rng, 0.0, 1.5, n1)
        self.a = 3.0 * rng.standard_normal((n2, n1)) / math.sqrt(max(n1, 1))
        self.t = _ellipsoid_cholesky(n2, 1e2, rng) if n2 else np.zeros((0, 0))
        self.d2 = 5.0 * rng.standard_normal(n1)
        self.d3 = _log_uniform(rng, 0.0, 1.5, n1)

    def apply(self, z: np.ndarray) -> np.ndarray:
        n1, n2 = self.n1, self.n2
        z1, z2, z3 = z[:, :n1], z[:, n1:n1 + n2], z[:, n1 + n2:]
        return np.hstack([z1 * self.d1 + z2 @ self.a + z3 * self.d2, z2 @ self.t, z3 * self.d3])

    def dense(self) -> np.ndarray:
        n1, n2 = self.n1, self.n2
        b = np.zeros((2 * n1 + n2,) * 2)
        b[:n1, :n1] = np.diag(self.d1)
        b[n1:n1 + n2, :n1], b[n1:n1 + n2, n1:n1 + n2] = self.a, self.t
        b[n1 + n2:, :n1], b[n1 + n2:, n1 + n2:] = np.diag(self.d2), np.diag(self.d3)
        return b


class LowFactor:
    """``B = [[A, 0], [C, D]]`` in ``low:K``: ``BBᵀ = diag(0_K, D²) + VVᵀ`` with ``V = [A; C]`` (p×K),
    a diagonal (separable) curvature plus ``K`` stiff global directions."""

    def __init__(self, dim: int, k: int, rng: np.random.Generator) -> None:
        self.k = k
        self.a = 10.0 * _ellipsoid_cholesky(k, 10.0, rng)
        # the stiff directions spread over all coordinates: column norms² ~ 10³ whatever p is
        self.c = 10.0 ** 1.5 * rng.standard_normal((dim - k, k)) / math.sqrt(dim - k)
        self.d = _log_uniform(rng, 0.0, 1.5, dim - k)

    def apply(self, z: np.ndarray) -> np.ndarray:
        head, rest = z[:, :self.k], z[:, self.k:]
        return np.hstack([head @ self.a + rest @ self.c, rest * self.d])

    def dense(self) -> np.ndarray:
        k, p = self.k, self.k + len(self.d)
        b = np.zeros((p, p))
        b[:k, :k], b[k:, :k], b[k:, k:] = self.a, self.c, np.diag(self.d)
        return b


class UpFactor:
    """``B = G⁻ᵀ`` in ``up:K`` for the covariance factor ``G = [[W₁, 0], [W₂, diag(√δ)]]``: the search
    covariance ``(BBᵀ)⁻¹ = GGᵀ = diag(0_K, δ) + WWᵀ``, ``W = [W₁; W₂]`` (p×K): ``K`` long axes over a
    diagonal, VkD-CMA's model. ``Bᵀz = G⁻¹z`` is a block forward substitution, ``O(pK)``."""

    def __init__(self, dim: int, k: int, rng: np.random.Generator) -> None:
        self.k = k
        self.w1 = 10.0 * _ellipsoid_cholesky(k, 10.0, rng)  # the long axes reach the head too (σ² ~ 10²–10³)
        self.w2 = 10.0 ** 1.5 * rng.standard_normal((dim - k, k)) / math.sqrt(dim - k)  # long axes, σ² ~ 10³
        self.sqrt_delta = np.sqrt(_log_uniform(rng, -1.5, 0.0, dim - k))

    def apply(self, z: np.ndarray) -> np.ndarray:
        head = np.linalg.solve(self.w1, z[:, :self.k].T).T
        return np.hstack([head, (z[:, self.k:] - head @ self.w2.T) / self.sqrt_delta])

    def dense(self) -> np.ndarray:
        k, p = self.k, self.k + len(self.sqrt_delta)
        g = np.zeros((p, p))
        g[:k, :k], g[k:, :k], g[k:, k:] = self.w1, self.w2, np.diag(self.sqrt_delta)
        return np.linalg.inv(g).T


# -- outer functions: minimum 0 at 0 only, diagonal Hessian there --------------------------------------

def sum_of_squares(v: np.ndarray) -> np.ndarray:
    return (v * v).sum(1)


def rosenbrock_chain(v: np.ndarray) -> np.ndarray:
    """``Σᵢ<p (vᵢ² + 100 (vᵢ₊₁ − vᵢ²)²) + v_p²``: Rosenbrock's curved valley ``vᵢ₊₁ ≈ vᵢ²``, with its
    optimum at 0; the Hessian there is ``diag(2, 202, …, 202)`` (the valley term is flat across)."""
    valley = v[:, 1:] - v[:, :-1] ** 2
    return (v[:, :-1] ** 2).sum(1) + CHAIN_WEIGHT * (valley * valley).sum(1) + v[:, -1] ** 2


class LogisticLoss:
    """``Σₙ ωₙ [softplus(s*ₙ + tₙ) − softplus(s*ₙ) − σ(s*ₙ) tₙ]``: the cross-entropy of a logistic model
    with scores ``s* + t`` against the soft labels ``σ(s*)`` of the true scores, minus its minimum.

    Each term is a Bregman divergence of softplus (≥ 0, 0 only at ``tₙ = 0``). The sample weights
    ``ωₙ = 1 / (4σ'(s*ₙ))`` make the Hessian at the optimum ``¼ I`` exactly (σ' varies with the score,
    so unweighted, the Kronecker design would give only a weighted sum of Kronecker products).
    """

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores
        self.labels = 1.0 / (1.0 + np.exp(-scores))
        self.weights = 1.0 / (4.0 * self.labels * (1.0 - self.labels))
        self.base = np.logaddexp(0.0, scores)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        terms = np.logaddexp(0.0, self.scores + t) - self.base - self.labels * t
        return (self.weights * np.maximum(terms, 0.0)).sum(1)  # rounding must not push a term below 0


# -- the objectives -----------------------------------------------------------------------------------

class StructuredFactor(Protocol):
    def apply(self, z: np.ndarray) -> np.ndarray: ...  # (n, p) rows z → rows (Bᵀz)ᵀ


class StructuredObjective:
    """``X ↦ outer(Bᵀ(X − x_opt))`` as a picklable callable (no closures, so it crosses processes)."""

    def __init__(self, x_opt: np.ndarray, factor: StructuredFactor,
                 outer: Callable[[np.ndarray], np.ndarray] = sum_of_squares) -> None:
        self.x_opt, self.factor, self.outer = x_opt, factor, outer

    def __call__(self, X: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(X, dtype=float)) - self.x_opt
        return self.outer(self.factor.apply(z))


Built = tuple[StructuredFactor, Callable[[np.ndarray], np.ndarray]]


def _arrow(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    return HierFactor(dim, rng), sum_of_squares


def _arrow_rosenbrock(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    return HierFactor(dim, rng), rosenbrock_chain


def _kron_quadratic(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    rows, cols = matrix_shape(dim)
    return KronFactor((rows, cols), _ellipsoid_cholesky(rows, 1e2, rng), _ellipsoid_cholesky(cols, 1e2, rng)), \
        sum_of_squares


def _kron_logistic(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    """Row features ``aᵢ`` (2·rows of them) and column features ``bⱼ`` (2·cols), the columns of
    ``Pa = La Qa`` and ``Pb = Lb Qb`` with orthonormal-row ``Q``: ``Σᵢ aᵢaᵢᵀ = La Laᵀ``, a rotated
    ellipsoid of condition 10², and likewise for ``b``; the teacher is ``W* = x_opt``."""
    rows, cols = matrix_shape(dim)

    def features(size: int) -> np.ndarray:
        q = np.linalg.qr(rng.standard_normal((2 * size, size)))[0].T  # size × 2·size, orthonormal rows
        return _ellipsoid_cholesky(size, 1e2, rng) @ q

    pa, pb = features(rows), features(cols)
    scale = LOGISTIC_SCORE_STD / np.std(KronFactor((rows, cols), pa, pb).apply(x_opt[None, :]))
    factor = KronFactor((rows, cols), pa * math.sqrt(scale), pb * math.sqrt(scale))
    return factor, LogisticLoss(factor.apply(x_opt[None, :])[0])


def _ar_toeplitz(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    """AR(2) with a complex pair of roots of modulus ρ ~ U(0.85, 0.95): ``φ₁ = 2ρ cos θ``, ``φ₂ = −ρ²``."""
    rho, theta = rng.uniform(0.85, 0.95), rng.uniform(0.1 * math.pi, 0.4 * math.pi)
    return ToeplitzFactor(np.array([1.0, -2.0 * rho * math.cos(theta), rho * rho])), sum_of_squares


def sparse_sizes(dim: int) -> tuple[int, int]:
    """``(N1, N2)`` with ``2·N1 + N2 = dim`` and ``N2`` about ``min(10, dim/3)``."""
    n2 = min(SPARSE_N2, dim // 3)
    n2 += (dim - n2) % 2  # 2·N1 = dim − N2 must be even
    return (dim - n2) // 2, n2


def _sparse_cholesky(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    return SparseFactor(*sparse_sizes(dim), rng), sum_of_squares


def _lowrank_precision(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    return LowFactor(dim, LOW_RANK, rng), sum_of_squares


def _lowrank_covariance(dim: int, rng: np.random.Generator, x_opt: np.ndarray) -> Built:
    return UpFactor(dim, LOW_RANK, rng), sum_of_squares


@dataclass(frozen=True)
class StructuredSpec:
    """One entry of :data:`STRUCTURED`."""

    build: Callable[[int, np.random.Generator, np.ndarray], Built]  # (dim, instance stream, x_opt)
    fits: Callable[[int], tuple[str, ...]]  # the es_ngd structures made for it, in dimension p
    min_dim: int
    summary: str
    matrix: bool = False  # x is vec(W) of a matrix: p must factor, es_ngd gets the shape


STRUCTURED: dict[str, StructuredSpec] = {
    "arrow": StructuredSpec(_arrow, lambda p: (f"hier:{ARROW_K1},{ARROW_K2}",), ARROW_K1 + ARROW_K2 + 1,
                            "quadratic, arrow Hessian: dense first 2 and last 3 rows/columns (hier)"),
    "arrow-rosenbrock": StructuredSpec(_arrow_rosenbrock, lambda p: (f"hier:{ARROW_K1},{ARROW_K2}",),
                                       ARROW_K1 + ARROW_K2 + 1,
                                       "Rosenbrock-like chain in arrow-coupled coordinates (non-quadratic, hier)"),
    "kron-quadratic": StructuredSpec(_kron_quadratic, lambda p: ("kron(dense,dense)",), 4,
                                     "tr((W−W*)ᵀ A (W−W*) Bᵀ), Hessian B ⊗ A (kron)", matrix=True),
    "kron-logistic": StructuredSpec(_kron_logistic, lambda p: ("kron(dense,dense)",), 4,
                                    "logistic loss of a bilinear model aᵀWb on a Kronecker design "
                                    "(non-quadratic, kron)", matrix=True),
    "ar-toeplitz": StructuredSpec(_ar_toeplitz, lambda p: ("toeplitz",), 3,
                                  "AR(2) smoothing prior: banded Toeplitz Hessian (toeplitz)"),
    "sparse-cholesky": StructuredSpec(_sparse_cholesky, lambda p: ("sparse:{},{}".format(*sparse_sizes(p)),), 3,
                                      "quadratic with a sparse Cholesky factor of MATH.md §4 (sparse)"),
    "lowrank-precision": StructuredSpec(_lowrank_precision, lambda p: (f"low:{LOW_RANK}",), LOW_RANK + 1,
                                        "diagonal + rank-3 precision: 3 stiff directions (low)"),
    "lowrank-covariance": StructuredSpec(_lowrank_covariance, lambda p: (f"up:{LOW_RANK}",), LOW_RANK + 1,
                                         "diagonal + rank-3 covariance: 3 long axes (up, VkD-CMA's model)"),
}


def check_dimension(name: str, dim: int) -> None:
    """A ValueError if structured problem ``name`` is not defined in dimension ``dim``."""
    spec = STRUCTURED.get(name)
    if spec is None:
        raise ValueError(f"unknown structured problem {name!r}; valid: {', '.join(STRUCTURED)}")
    if int(dim) != dim or dim < spec.min_dim:
        raise ValueError(f"{name} needs p >= {spec.min_dim}, got {dim!r}")
    if spec.matrix:
        matrix_shape(dim)  # raises for a p that does not factor


def fitting_structures(name: str, dim: int) -> tuple[str, ...]:
    """The es_ngd structures made for problem ``name`` in dimension ``dim`` (none for a generic function)."""
    spec = STRUCTURED.get(name)
    return spec.fits(dim) if spec is not None else ()


def make_structured_problem(name: str, dim: int, instance: int) -> Problem:
    """The instance ``instance`` of structured problem ``name`` in dimension ``dim``."""
    check_dimension(name, dim)
    spec = STRUCTURED[name]
    rng, x0 = instance_streams(name, dim, instance)
    x_opt = rng.uniform(-OPTIMUM_HALF_WIDTH, OPTIMUM_HALF_WIDTH, dim)
    factor, outer = spec.build(dim, rng, x_opt)
    return Problem(name=name, dim=int(dim), instance=int(instance), evaluate=StructuredObjective(x_opt, factor, outer),
                   x0=x0, kind="structured", shape=matrix_shape(dim) if spec.matrix else None)
