"""One iteration of the structured second-order method, as a pure function on a frozen state (MATH.md §6).

::

    M = C ⊙ κ(B⁻¹ ∇²f(μ) B⁻ᵀ − I)             (the group's hessian_direction: a few Hessian-vector products)
    B ← B · h(β' M),   β' = β · min(1, max_step / ‖βM‖)          (the step bound of MATH.md §5)
    μ ← μ − β S⁻¹ ∇f(μ),   S = BBᵀ  (the new B with order="after", the old one with "before"),
        shortened so that its S-norm ‖Bᵀ Δμ‖ stays <= max_mean_step

Both bounds are measured in the distribution's own geometry (the spectral norm of the tangent, the
Mahalanobis length of the mean step), so they keep the method's invariance under the group
(``f(Rᵀy)`` with ``R`` in the group has iterates ``Rᵀ`` times those of ``f``); ``S`` stays positive definite
whatever the Hessian's sign, because ``h(M)`` is invertible. The defaults were measured on the issue's
200-dimensional Rosenbrock and Dixon-Price from a far start (benchmarks/results/second_order.txt).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.groups import MatrixGroup
from es_ngd.groups.base import Factor
from es_ngd.newton.oracle import Counter, Oracle, finite_positive

#: β: the fraction of the way to the new precision and of the Newton step taken per iteration; 1 converged
#: from more far starts than 0.5 and in half the iterations (the sweep in benchmarks/results/second_order.txt)
DEFAULT_LR = 1.0
#: bound on the spectral norm of the factor step ``β M`` (MATH.md §5: h is monotone up to 1)
DEFAULT_MAX_STEP = 1.0
#: bound on the S-norm (Mahalanobis length) of the mean step
DEFAULT_MAX_MEAN_STEP = math.inf
ORDERS = ("after", "before")


@dataclass(frozen=True)
class NewtonOptions:
    """Every option of :class:`~es_ngd.newton.Newton` and :func:`~es_ngd.newton.minimize`, with its default."""

    lr: float = DEFAULT_LR  #: β
    scale: float | str = "auto"  #: initial ``B = scale·I``; "auto": ``scale² = mean |diag H(x0)|``
    order: str = "after"  #: the mean step uses the precision "after" (new B) or "before" the B update
    max_step: float = DEFAULT_MAX_STEP  #: bound on ``‖β M‖₂`` per step (MATH.md §5); counted when it acts
    max_mean_step: float = DEFAULT_MAX_MEAN_STEP  #: bound on the mean step's S-norm ``‖Bᵀ Δμ‖``
    diagonal: str = "exact"  #: ``diag H`` when hess_diag is not given: "exact" (p products) or "hutchinson"
    probes: int = 16  #: Rademacher probes of the Hutchinson estimate (products per iteration)
    seed: int = 0  #: the Hutchinson probes' seed
    ftarget: float = -math.inf  #: stop when f(μ) is at or below this
    maxiter: float = 10_000  #: stop after this many iterations (a converging run ends by tolx or tolfun first)
    tolx: float = 1e-15  #: stop when ``max|Δμ| <= tolx · max(1, max|μ|)`` (the step is below round-off)
    tolfun: float = 0.0  #: stop when the last ``tolfun_window`` values of f(μ) span at most this
    tolfun_window: int = 10  #: iterations in the tolfun window
    max_condition: float = 1e14  #: stop when the condition number of S exceeds this (checked every 10 iterations)


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(NewtonOptions))


def make_options(**options: Any) -> NewtonOptions:
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; valid options: {sorted(OPTION_NAMES)}")
    opts = NewtonOptions(**options)
    for name in ("lr", "max_step"):
        finite_positive(name, getattr(opts, name))
    if not (opts.max_mean_step > 0):
        raise ValueError(f"max_mean_step must be positive (inf: no bound), got {opts.max_mean_step!r}")
    if opts.scale != "auto":
        finite_positive("scale", opts.scale)
    if opts.order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {opts.order!r}")
    if isinstance(opts.tolfun_window, bool) or int(opts.tolfun_window) != opts.tolfun_window \
            or opts.tolfun_window < 2:
        raise ValueError(f"tolfun_window must be an integer >= 2, got {opts.tolfun_window!r}")
    return opts


@dataclass(frozen=True)
class NewtonState:
    """Everything that defines the method at the start of an iteration (arrays are never modified)."""

    mean: np.ndarray
    factor: Factor
    f: float  #: f at the mean
    iterations: int = 0
    evaluations: int = 0  #: calls of f
    gradients: int = 0  #: calls of grad
    hvps: int = 0  #: Hessian-vector products (with those behind an exact or estimated diagonal)
    step_bound_hits: int = 0  #: iterations in which the bound on ‖βM‖ acted
    mean_bound_hits: int = 0  #: iterations in which the bound on the mean step acted
    fbest: float = math.inf
    xbest: np.ndarray | None = None
    last_step: float = math.inf  #: max |Δμ| of the last iteration
    history: tuple[float, ...] = ()  #: the last tolfun_window values of f(μ)


def initial_state(group: MatrixGroup, oracle: Oracle, x0: np.ndarray, options: NewtonOptions,
                  factor: Factor | None = None) -> NewtonState:
    """The state at ``x0``: ``B = scale·I`` (or the given ``factor``) and ``f(x0)``."""
    counter = Counter()
    if factor is None:
        scale = options.scale
        if scale == "auto":
            # S₀ = (mean |Hᵢᵢ|) I: the first mean step has the length of a Newton step on the Hessian's
            # average curvature, where S₀ = I overshoots by orders of magnitude from a far start
            diag = oracle.diagonal(x0, counter, 0)()
            scale = math.sqrt(max(float(np.abs(diag).mean()), 1e-300))
        factor = group.identity(float(scale))
    f0 = oracle.value(x0, counter)
    return NewtonState(mean=x0, factor=factor, f=f0, evaluations=counter.evaluations, hvps=counter.hvps,
                       fbest=f0 if math.isfinite(f0) else math.inf, xbest=x0.copy() if math.isfinite(f0) else None,
                       history=(f0,))


def newton_step(state: NewtonState, group: MatrixGroup, oracle: Oracle,
                options: NewtonOptions) -> tuple[NewtonState, bool]:
    """One iteration from ``state``: the new state and whether it is numerically sound.

    Bad derivatives (wrong shape, NaN/inf) raise before anything is computed from them; the input
    state is never modified. When the new factor or mean is not finite the old state comes back with
    ``False`` (a reason to stop, not a crash).
    """
    counter = Counter()
    x, beta = state.mean, options.lr
    g = oracle.gradient(x, counter)
    direction = group.hessian_direction(state.factor, oracle.products(x, counter),
                                        oracle.diagonal(x, counter, state.iterations + 1), 1.0)
    size = beta * group.magnitude(direction)
    bounded = size > options.max_step
    step = beta * options.max_step / size if bounded else beta
    factor = group.retract(state.factor, direction, step) if math.isfinite(size) else state.factor
    precision = factor if options.order == "after" else state.factor
    whitened = group.solve(precision, g[None, :])  # B⁻¹g: ‖B⁻¹g‖ is the S-norm of S⁻¹g
    length = beta * float(np.sqrt((whitened * whitened).sum()))
    mean_bounded = length > options.max_mean_step
    rate = beta * options.max_mean_step / length if mean_bounded else beta
    delta = rate * group.sample(precision, whitened)[0]  # β S⁻¹ g = β B⁻ᵀ B⁻¹ g
    mean = x - delta
    if not (math.isfinite(size) and math.isfinite(group.logdet(factor)) and np.isfinite(mean).all()):
        return state, False
    f_new = oracle.value(mean, counter)
    if not math.isfinite(f_new):  # overflowed: keep the last state, which the caller reports
        return state, False
    improved = f_new < state.fbest
    new = dataclasses.replace(
        state, mean=mean, factor=factor, f=f_new, iterations=state.iterations + 1,
        evaluations=state.evaluations + counter.evaluations, gradients=state.gradients + counter.gradients,
        hvps=state.hvps + counter.hvps, step_bound_hits=state.step_bound_hits + int(bounded),
        mean_bound_hits=state.mean_bound_hits + int(mean_bounded),
        fbest=f_new if improved else state.fbest, xbest=mean.copy() if improved else state.xbest,
        last_step=float(np.abs(delta).max()), history=(*state.history, f_new)[-options.tolfun_window:])
    return new, True
