"""Box constraints ``lower <= x <= upper``, per coordinate, for any structure.

The strategy itself searches an unconstrained space; a :class:`Bounds` object maps each candidate
into the box before the objective sees it. Two ways, chosen by ``handling``:

- ``"transform"`` (default, pycma's ``BoundTransform``): a smooth map that is the identity in the
  interior and bends quadratically into each bound within a margin of width
  ``min((upper − lower)/2, (1 + |bound|)/20)``; far outside it folds back periodically. The search
  never sees the bounds, and an optimum on a bound is reached at the bottom of the quadratic bend.
- ``"penalty"``: the candidate is clipped into the box and ``penalty_weight · ‖x − clip(x)‖²`` is
  added to its fitness, which pulls the search back to the box (the minimiser of the penalised
  function is the constrained minimiser).

Either way every point handed to the objective lies in the box. Infinite bounds (or ``None``, pycma's
spelling) leave that side free, and scalar bounds apply to every coordinate.
With ``"penalty"``, the fitness the strategy sees (and so ``fbest``) includes the penalty, which is
zero exactly when the candidate lay inside the box.

ask/tell use::

    bounds = Bounds(lower, upper)
    es = NGDES(bounds.to_internal(x0), sigma0)
    objective = bounds.wrap(f)                      # f only ever sees feasible points
    while not es.stop():
        X = es.ask()
        es.tell(X, [objective(x) for x in X])
    x_best = bounds.to_feasible(es.result.xbest)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

HANDLINGS = ("transform", "penalty")


class Bounds:
    """Per-coordinate bounds with a chosen handling (see the module docstring)."""

    def __init__(self, lower: Any, upper: Any, *, dim: int | None = None, handling: str = "transform",
                 penalty_weight: float = 1.0) -> None:
        if handling not in HANDLINGS:
            raise ValueError(f"bound handling must be one of {HANDLINGS}, got {handling!r}")
        if not (np.isfinite(penalty_weight) and penalty_weight > 0):
            raise ValueError(f"penalty_weight must be a positive finite number, got {penalty_weight!r}")
        lower_arr, upper_arr = _side(lower, -np.inf, "lower"), _side(upper, np.inf, "upper")
        if lower_arr.ndim > 1 or upper_arr.ndim > 1:
            raise ValueError("bounds must be numbers or 1-D sequences, one entry per coordinate")
        sizes = {a.size for a in (lower_arr, upper_arr) if a.ndim == 1}
        if dim is not None:
            sizes.add(int(dim))
        if len(sizes) > 1:
            raise ValueError(f"bounds and dimension disagree in length: {sorted(sizes)} "
                             "(pass one number or one entry per coordinate)")
        size = sizes.pop() if sizes else 1
        self.lower = np.broadcast_to(lower_arr, (size,)).copy()
        self.upper = np.broadcast_to(upper_arr, (size,)).copy()
        if np.isnan(self.lower).any() or np.isnan(self.upper).any():
            raise ValueError("bounds must not be NaN (a free side is None, -inf or inf)")
        bad = np.flatnonzero(~(self.lower < self.upper) | (self.lower == np.inf) | (self.upper == -np.inf))
        if bad.size:
            raise ValueError(f"each lower bound must be below its upper bound; not so at coordinates {bad.tolist()}")
        self.dim = size  #: 1 for scalar bounds, which apply to every coordinate of any dimension
        self.handling = handling
        self.penalty_weight = float(penalty_weight)
        # margins of the quadratic bends (pycma's al, au); 1 where the bound is infinite (unused)
        width = self.upper - self.lower
        with np.errstate(invalid="ignore"):
            self._margin_low = np.where(np.isfinite(self.lower),
                                        np.minimum(width / 2, (1 + np.abs(self.lower)) / 20), 1.0)
            self._margin_up = np.where(np.isfinite(self.upper),
                                       np.minimum(width / 2, (1 + np.abs(self.upper)) / 20), 1.0)

    def __repr__(self) -> str:
        return f"Bounds(dim={self.dim}, handling={self.handling!r})"

    def check_dim(self, dim: int) -> Bounds:
        """This object, fitted to dimension ``dim`` (scalar bounds broadcast); raises on a mismatch."""
        if self.dim == dim:
            return self
        if self.dim == 1:
            return Bounds(self.lower, self.upper, dim=dim, handling=self.handling, penalty_weight=self.penalty_weight)
        raise ValueError(f"bounds have {self.dim} entries but x has {dim} coordinates")

    # -- the maps -------------------------------------------------------------------------------------
    def to_feasible(self, x: Any) -> Any:
        """Map points of the search space (rows, or one point) into the box; tensors stay tensors."""
        arr, restore = _as_numpy(x)
        out = self._transform(arr) if self.handling == "transform" else self._clip(arr)
        return restore(out)

    def penalty(self, x: Any) -> np.ndarray | float:
        """``penalty_weight · ‖x − clip(x)‖²`` per point (zero with the transform)."""
        arr, _ = _as_numpy(x)
        if self.handling == "transform":
            return np.zeros(arr.shape[:-1]) if arr.ndim > 1 else 0.0
        distance2 = ((arr - self._clip(arr)) ** 2).sum(-1)
        return self.penalty_weight * distance2 if arr.ndim > 1 else float(self.penalty_weight * distance2)

    def to_internal(self, x: Any) -> np.ndarray:
        """A search-space point that :meth:`to_feasible` maps to the feasible ``x`` (for starting points)."""
        y = np.asarray(x, dtype=float)
        if self.dim != 1 and y.shape[-1:] != (self.dim,):  # one entry broadcasts, as in check_dim
            raise ValueError(f"x has {y.shape[-1:]} coordinates but the bounds have {self.dim}")
        outside = np.flatnonzero((y < self.lower) | (y > self.upper))
        if outside.size:
            raise ValueError(f"the starting point lies outside the bounds at coordinates {outside.tolist()}")
        if self.handling == "penalty":
            return y.copy()
        lo, up, al, au = self.lower, self.upper, self._margin_low, self._margin_up
        with np.errstate(invalid="ignore"):  # infinite bounds make the unused branches NaN
            x_low = lo - al + 2 * np.sqrt(np.maximum(al * (y - lo), 0.0))
            x_up = up + au - 2 * np.sqrt(np.maximum(au * (up - y), 0.0))
            return np.where(y < lo + al, x_low, np.where(y > up - au, x_up, y))

    def wrap(self, f: Callable[..., Any], *, vectorized: bool = False) -> Callable[..., Any]:
        """``f`` evaluated at the feasible image of each point, plus the penalty (``"penalty"``)."""
        return _BoundedObjective(f, self, vectorized)

    # -- internals ----------------------------------------------------------------------------------
    def _clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        """pycma's BoxConstraintsLinQuadTransformation, vectorised over rows and coordinates."""
        lo, up, al, au = self.lower, self.upper, self._margin_low, self._margin_up
        with np.errstate(invalid="ignore", over="ignore"):  # inf bounds: the masked branches are NaN
            # fold far-away points back by the period, then mirror into [lo − al, up + au]
            width = up - lo
            start = lo - 2 * al - width / 2
            period = 2 * (width + al + au)
            far = np.isfinite(width) & ((x < start) | (x > up + 2 * au + width / 2))
            x = np.where(far, x - period * np.floor((x - start) / period), x)
            x = np.where(x > up + au, 2 * (up + au) - x, x)
            x = np.where(x < lo - al, 2 * (lo - al) - x, x)
            # identity inside, a quadratic bend onto each bound within its margin
            y = np.where(x < lo + al, lo + (x - (lo - al)) ** 2 / (4 * al), x)
            y = np.where(x > up - au, up - (x - (up + au)) ** 2 / (4 * au), y)
        return np.clip(y, lo, up)  # a no-op in exact arithmetic; guards against round-off


class _BoundedObjective:
    """``f ∘ to_feasible + penalty``; a class, not a closure, so Ray can pickle it to workers."""

    def __init__(self, f: Callable[..., Any], bounds: Bounds, vectorized: bool) -> None:
        self.f, self.bounds, self.vectorized = f, bounds, vectorized

    def __call__(self, x: Any) -> Any:
        value = self.f(self.bounds.to_feasible(x))
        if self.bounds.handling == "transform":
            return value
        if self.vectorized:
            values = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return np.asarray(values, dtype=float).reshape(-1) + self.bounds.penalty(x)
        return float(value) + self.bounds.penalty(x)


def make_bounds(bounds: Bounds | tuple[Any, Any], dim: int, handling: str = "transform") -> Bounds:
    """``optimize``'s ``bounds=`` argument: a :class:`Bounds` or a ``(lower, upper)`` pair."""
    if isinstance(bounds, Bounds):
        return bounds.check_dim(dim)
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise TypeError("bounds must be a (lower, upper) pair or a Bounds object") from None
    return Bounds(lower, upper, dim=dim, handling=handling)


def _side(bound: Any, free: float, name: str) -> np.ndarray:
    """One side of the box as floats: ``None`` (pycma's spelling, for the whole side or one entry) is ``free``."""
    if bound is None:
        return np.asarray(free)
    if isinstance(bound, (list, tuple)):
        bound = [free if entry is None else entry for entry in bound]
    try:
        return np.asarray(bound, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"the {name} bound must be a number, None or one entry per coordinate, "
                         f"got {bound!r}") from None


def _as_numpy(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """``x`` as a float numpy array, and a function that turns a result back into x's kind."""
    if hasattr(x, "detach"):  # a torch tensor: compute on the host, hand back a tensor like it
        import torch

        return (x.detach().cpu().numpy().astype(float),
                lambda out: torch.as_tensor(out, dtype=x.dtype, device=x.device))
    return np.asarray(x, dtype=float), lambda out: out


__all__ = ["HANDLINGS", "Bounds", "make_bounds"]
