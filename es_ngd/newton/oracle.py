"""The derivatives the second-order method asks for, checked where they enter (MATH.md §6).

An :class:`Oracle` wraps the user's ``f``, ``grad``, ``hvp`` and optional ``hess_diag`` callables. It is
stateless: each call returns fresh arrays, and the Hessian products and diagonal at a point are handed
to the group as closures (:meth:`Oracle.products`, :meth:`Oracle.diagonal`) that count what they cost,
so that a step that fails half way has changed nothing.

When ``hess_diag`` is not given and a group needs ``diag H``, it is obtained either exactly from ``p``
products with the unit vectors (``diagonal="exact"``: as costly as forming H, fine for small p or cheap
products), or by Hutchinson's estimator (``diagonal="hutchinson"``): ``diag H ≈ mean_j vⱼ ⊙ Hvⱼ`` over
``probes`` Rademacher vectors ``vⱼ``, ``probes`` products per iteration. The estimate is unbiased, but each
entry has variance ``Σ_{k≠i} H_ik² / probes``: on a Hessian whose off-diagonal entries are as large as its
diagonal ones the estimate is noisy, and that noise enters the factor's diagonal block
(benchmarks/results/second_order.txt measures the effect).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.groups.base import HessianDiagonal, HessianProducts

DIAGONAL_MODES = ("exact", "hutchinson")


def _as_vector(value: Any, dim: int, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return an array of {dim} numbers, got {type(value).__name__}") from None
    if arr.shape != (dim,):
        raise ValueError(f"{what} must return an array of shape ({dim},), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} returned {int((~np.isfinite(arr)).sum())} NaN or inf entries "
                         f"(indices {np.flatnonzero(~np.isfinite(arr))[:10].tolist()}); nothing was updated")
    return arr


@dataclass
class Counter:
    """What one step spent: calls of ``f`` and ``grad``, and Hessian-vector products."""

    evaluations: int = 0
    gradients: int = 0
    hvps: int = 0


@dataclass(frozen=True)
class Oracle:
    """``f``, ``∇f``, Hessian-vector products and (optionally) ``diag H`` of the objective, checked.

    ``hvp(x, v)`` returns ``H(x) v`` for one vector ``v``; with ``vectorized_hvp=True`` it takes the
    rows ``V`` (shape ``(m, p)``) and returns the rows ``H(x) vⱼ``.
    """

    f: Callable[[np.ndarray], Any]
    grad: Callable[[np.ndarray], Any]
    hvp: Callable[[np.ndarray, np.ndarray], Any]
    dim: int
    hess_diag: Callable[[np.ndarray], Any] | None = None
    vectorized_hvp: bool = False
    diagonal_mode: str = "exact"
    probes: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("f", "grad", "hvp"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable, got {type(getattr(self, name)).__name__}")
        if self.hess_diag is not None and not callable(self.hess_diag):
            raise TypeError(f"hess_diag must be callable or None, got {type(self.hess_diag).__name__}")
        if self.diagonal_mode not in DIAGONAL_MODES:
            raise ValueError(f"diagonal must be one of {DIAGONAL_MODES}, got {self.diagonal_mode!r}")
        if isinstance(self.probes, bool) or int(self.probes) != self.probes or self.probes < 1:
            raise ValueError(f"probes must be a positive integer, got {self.probes!r}")

    def value(self, x: np.ndarray, counter: Counter) -> float:
        value = self.f(x)
        counter.evaluations += 1
        if hasattr(value, "detach"):
            value = value.detach().cpu().item()
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"f must return a number, got {type(value).__name__}") from None

    def gradient(self, x: np.ndarray, counter: Counter) -> np.ndarray:
        counter.gradients += 1
        return _as_vector(self.grad(x), self.dim, "grad")

    def products(self, x: np.ndarray, counter: Counter) -> HessianProducts:
        """Rows ``V`` → rows ``H(x) vⱼ``, each checked; what it costs is added to ``counter``."""
        dim = self.dim

        def hvp(v: np.ndarray) -> np.ndarray:
            v = np.asarray(v, dtype=float)
            counter.hvps += v.shape[0]
            if v.shape[0] == 0:
                return np.zeros((0, dim))
            if self.vectorized_hvp:
                out = self.hvp(x, v)
                if hasattr(out, "detach"):
                    out = out.detach().cpu().numpy()
                out = np.asarray(out, dtype=float)
                if out.shape != v.shape:
                    raise ValueError(f"hvp must return an array of shape {v.shape} (one row per vector), "
                                     f"got shape {out.shape}")
                return np.stack([_as_vector(row, dim, "hvp") for row in out])
            return np.stack([_as_vector(self.hvp(x, row), dim, "hvp") for row in v])

        return hvp

    def diagonal(self, x: np.ndarray, counter: Counter, iteration: int) -> HessianDiagonal:
        """``() → diag H(x)``: exact from ``hess_diag``, else as ``diagonal_mode`` says (module docstring)."""
        if self.hess_diag is not None:
            return lambda: _as_vector(self.hess_diag(x), self.dim, "hess_diag")
        products = self.products(x, counter)
        if self.diagonal_mode == "exact":
            return lambda: _unit_diagonal(products, self.dim)

        def hutchinson() -> np.ndarray:
            # keyed by (seed, iteration): the same step gives the same estimate, resumed or not
            rng = np.random.default_rng([self.seed, iteration])
            v = rng.choice([-1.0, 1.0], size=(self.probes, self.dim))
            return (v * products(v)).mean(0)

        return hutchinson


def _unit_diagonal(products: HessianProducts, dim: int, chunk: int = 256) -> np.ndarray:
    """``diag H`` from ``p`` products with unit vectors, ``chunk`` at a time (memory O(chunk·p))."""
    out = np.empty(dim)
    for start in range(0, dim, chunk):
        stop = min(dim, start + chunk)
        units = np.zeros((stop - start, dim))
        units[np.arange(stop - start), np.arange(start, stop)] = 1.0
        out[start:stop] = np.einsum("ij,ij->i", products(units), units)
    return out


def finite_positive(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value
