"""The built-in benchmark functions: classic test problems, each with minimum value 0.

Every function takes a whole population ``X`` of shape ``(n, p)`` and returns ``n`` values, so a
generation costs one numpy call. A :class:`Problem` is one seeded *instance* of a function: the
optimum is moved to a random ``x_opt`` (so starting points carry no information about it), some
functions are rotated by a random orthogonal matrix (so an axis-aligned search distribution is not
enough), and the starting point ``x0`` is drawn from the same seed. The same ``(name, dim,
instance)`` always gives the same problem, in every process: that is what lets every solver face
exactly the same problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: the search box of every built-in function; x0 is drawn uniformly from the inner [-4, 4]^p
DOMAIN_HALF_WIDTH = 5.0
X0_HALF_WIDTH = 4.0
OPTIMUM_HALF_WIDTH = 3.0
CONDITION = 1e6  #: conditioning of ellipsoid, cigar and discus


def _axis_weights(p: int, exponent: float = 1.0) -> np.ndarray:
    """``CONDITION ** (exponent * i / (p - 1))`` for i = 0..p-1 (all ones in 1-D)."""
    return CONDITION ** (exponent * np.arange(p) / max(p - 1, 1))


def sphere(z: np.ndarray) -> np.ndarray:
    return (z * z).sum(1)


def ellipsoid(z: np.ndarray) -> np.ndarray:
    return (_axis_weights(z.shape[1]) * z * z).sum(1)


def cigar(z: np.ndarray) -> np.ndarray:
    """One easy direction, all others 10⁶ times steeper: the distribution must grow one long axis."""
    return z[:, 0] ** 2 + CONDITION * (z[:, 1:] ** 2).sum(1)


def discus(z: np.ndarray) -> np.ndarray:
    """One direction 10⁶ times steeper than the others: the distribution must shrink one axis."""
    return CONDITION * z[:, 0] ** 2 + (z[:, 1:] ** 2).sum(1)


def different_powers(z: np.ndarray) -> np.ndarray:
    p = z.shape[1]
    exponents = 2.0 + 4.0 * np.arange(p) / max(p - 1, 1)
    return (np.abs(z) ** exponents).sum(1)


def rosenbrock(z: np.ndarray) -> np.ndarray:
    """Rosenbrock moved so that its optimum (all ones) sits at z = 0."""
    x = z + 1.0
    if x.shape[1] == 1:  # the 1-D chain has no links: fall back to the valley floor term
        return ((1.0 - x) ** 2).sum(1)
    return (100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2).sum(1)


def rastrigin(z: np.ndarray) -> np.ndarray:
    return 10.0 * z.shape[1] + (z * z - 10.0 * np.cos(2.0 * np.pi * z)).sum(1)


def ackley(z: np.ndarray) -> np.ndarray:
    p = z.shape[1]
    value = (-20.0 * np.exp(-0.2 * np.sqrt((z * z).sum(1) / p)) - np.exp(np.cos(2.0 * np.pi * z).sum(1) / p)
             + 20.0 + np.e)
    return np.maximum(value, 0.0)  # exp(1) − e can round to −4e-16 at the optimum


@dataclass(frozen=True)
class FunctionSpec:
    """One entry of :data:`FUNCTIONS`."""

    evaluate: Callable[[np.ndarray], np.ndarray]  # (n, p) array of z = R(x − x_opt) → n values
    rotated: bool  # whether instances apply a seeded random rotation R
    summary: str


FUNCTIONS: dict[str, FunctionSpec] = {
    "sphere": FunctionSpec(sphere, False, "Σ z²"),
    "ellipsoid": FunctionSpec(ellipsoid, False, "axis-aligned ellipsoid, condition 1e6 (separable)"),
    "rotated-ellipsoid": FunctionSpec(ellipsoid, True, "the ellipsoid in a random rotated basis"),
    "cigar": FunctionSpec(cigar, True, "rotated cigar: one long axis, condition 1e6"),
    "discus": FunctionSpec(discus, True, "rotated discus: one short axis, condition 1e6"),
    "different-powers": FunctionSpec(different_powers, True, "rotated Σ |z_i|^(2 + 4i/(p-1))"),
    "rosenbrock": FunctionSpec(rosenbrock, False, "Rosenbrock's banana valley (non-convex)"),
    "rastrigin": FunctionSpec(rastrigin, False, "Rastrigin: 10^p local minima (multimodal)"),
    "ackley": FunctionSpec(ackley, False, "Ackley: many local minima, flat outer region (multimodal)"),
}


def random_rotation(p: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((p, p)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class Problem:
    """One seeded instance of a test function, ready to be minimised.

    ``evaluate(X)`` maps an ``(n, p)`` population to ``n`` values; ``fopt`` is the optimal value,
    so ``f − fopt`` is the precision that targets are measured in.
    """

    name: str
    dim: int
    instance: int
    evaluate: Callable[[np.ndarray], np.ndarray]
    x0: np.ndarray
    fopt: float = 0.0
    kind: str = "generic"  # "generic", "structured" (es_ngd.bench.structured) or "bbob"
    shape: tuple[int, int] | None = None  # matrix shape of x, for kron(…) structures (x = vec(W), column-major)


class _Instance:
    """``X ↦ g(R (X − x_opt))`` as a picklable callable (no closures, so it crosses processes)."""

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], x_opt: np.ndarray,
                 rotation: np.ndarray | None) -> None:
        self.function, self.x_opt, self.rotation = function, x_opt, rotation

    def __call__(self, X: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(X, dtype=float)) - self.x_opt
        if self.rotation is not None:
            z = z @ self.rotation.T
        return self.function(z)


def instance_streams(name: str, dim: int, instance: int) -> tuple[np.random.Generator, np.ndarray]:
    """The random stream that draws an instance (its x_opt first), and its starting point x0.

    One stream per (function, dim, instance), so adding a function never changes the others'
    instances; x0 has a stream of its own, so it does not depend on how much the instance draws.
    """
    seed_key = [instance, dim, *name.encode()]
    x0 = np.random.default_rng([*seed_key, 0]).uniform(-X0_HALF_WIDTH, X0_HALF_WIDTH, dim)
    return np.random.default_rng(seed_key), x0


def make_problem(name: str, dim: int, instance: int) -> Problem:
    """The instance ``instance`` of the built-in function ``name`` in dimension ``dim``."""
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise ValueError(f"unknown function {name!r}; valid functions: {', '.join(FUNCTIONS)}")
    if int(dim) != dim or dim < 1:
        raise ValueError(f"dimension must be a positive integer, got {dim!r}")
    rng, x0 = instance_streams(name, dim, instance)
    x_opt = rng.uniform(-OPTIMUM_HALF_WIDTH, OPTIMUM_HALF_WIDTH, dim)
    rotation = random_rotation(dim, rng) if spec.rotated else None
    return Problem(name=name, dim=int(dim), instance=int(instance),
                   evaluate=_Instance(spec.evaluate, x_opt, rotation), x0=x0)
