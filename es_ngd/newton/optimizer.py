"""The step-by-step :class:`Newton` object and the one-call :func:`minimize` (MATH.md §6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from es_ngd.groups import MatrixGroup, make_group
from es_ngd.groups.base import Factor
from es_ngd.newton.oracle import Oracle
from es_ngd.newton.step import NewtonState, initial_state, make_options, newton_step
from es_ngd.options import check_x0
from es_ngd.strategy import Result


class Newton:
    """Structured second-order optimiser: ``step()`` until ``stop()``, then ``result``.

    >>> opt = Newton(lambda x: float(x @ x), np.ones(3), structure="diag", grad=lambda x: 2 * x,
    ...              hvp=lambda x, v: 2 * v, hess_diag=lambda x: np.full(3, 2.0))
    >>> while not opt.stop():
    ...     _ = opt.step()
    >>> opt.result.fbest < 1e-20
    True

    ``grad(x)`` returns ``∇f(x)``; ``hvp(x, v)`` returns ``∇²f(x) v`` (rows in, rows out with
    ``vectorized_hvp=True``); ``hess_diag(x)`` the exact ``diag ∇²f(x)``, else the ``diagonal`` option
    decides. With ``grad`` and ``hvp`` both ``None``, ``f`` must be a torch function and they are built
    by autodiff (:mod:`es_ngd.newton.autodiff`). ``factor=`` starts from a given factor of the group
    instead of ``scale·I``. Every other keyword is a :class:`~es_ngd.newton.step.NewtonOptions` field.
    """

    def __init__(self, f: Callable[..., Any], x0: Any, *, structure: str | MatrixGroup,
                 grad: Callable[..., Any] | None = None, hvp: Callable[..., Any] | None = None,
                 hess_diag: Callable[..., Any] | None = None, vectorized_hvp: bool = False,
                 factor: Factor | None = None, **options: Any) -> None:
        x0_arr, _ = check_x0(x0, allow_matrix=False)
        self.options = make_options(**options)
        self.dim = x0_arr.size
        self.group = make_group(structure, self.dim)
        self._check_hessian_access()
        if grad is None and hvp is None:
            from es_ngd.newton.autodiff import autodiff

            f, grad, hvp = autodiff(f)
            vectorized_hvp = True
        elif grad is None or hvp is None:
            raise TypeError("pass both grad and hvp, or neither (then f must be a torch function: autodiff)")
        self.oracle = Oracle(f=f, grad=grad, hvp=hvp, dim=self.dim, hess_diag=hess_diag,
                             vectorized_hvp=vectorized_hvp, diagonal_mode=self.options.diagonal,
                             probes=self.options.probes, seed=self.options.seed)
        self.state: NewtonState = initial_state(self.group, self.oracle, x0_arr, self.options, factor)
        self._numerical_error: str | None = None

    def _check_hessian_access(self) -> None:
        """Fail at construction, not at the first step, for a group without Hessian access."""
        probe = self.group.identity()
        try:
            self.group.hessian_direction(probe, lambda v: np.zeros_like(v), lambda: np.ones(self.dim))
        except NotImplementedError as err:
            raise ValueError(str(err)) from None

    def step(self) -> NewtonState:
        """One iteration; raises (leaving the state as it was) on bad derivatives."""
        new, sound = newton_step(self.state, self.group, self.oracle, self.options)
        if not sound:
            self._numerical_error = "the step produced a non-finite mean, factor or f; kept the last state"
        self.state = new
        return new

    def stop(self) -> dict[str, Any]:
        """The termination reasons that hold now (empty while the method should go on)."""
        s, opts, stop = self.state, self.options, {}
        if s.fbest <= opts.ftarget:
            stop["ftarget"] = opts.ftarget
        if s.iterations >= opts.maxiter:
            stop["maxiter"] = opts.maxiter
        if s.last_step <= opts.tolx * max(1.0, float(np.abs(s.mean).max())):
            stop["tolx"] = opts.tolx
        if len(s.history) >= opts.tolfun_window and max(s.history) - min(s.history) <= opts.tolfun:
            stop["tolfun"] = opts.tolfun
        # the condition number costs an SVD for dense factors: checked every 10 iterations
        if s.iterations % 10 == 0 and self.group.condition_number(s.factor) > opts.max_condition:
            stop["condition"] = opts.max_condition
        if self._numerical_error:
            stop["numerical"] = self._numerical_error
        return stop

    def run(self, callback: Callable[[Newton], Any] | None = None) -> Result:
        """Iterate until :meth:`stop`; ``callback(self)`` after every step, ``True`` stops (reason "callback")."""
        interrupted = False
        while not self.stop():
            self.step()
            if callback is not None and callback(self) is True:
                interrupted = True
                break
        result = self.result
        if interrupted:
            result.stop["callback"] = True
        return result

    @property
    def result(self) -> Result:
        s = self.state
        return Result(xbest=s.xbest, fbest=s.fbest, evaluations=s.evaluations, iterations=s.iterations,
                      mean=s.mean.copy(), sigma=1.0, stop=self.stop(), step_bound_hits=s.step_bound_hits,
                      extra={"gradients": s.gradients, "hvps": s.hvps, "mean_bound_hits": s.mean_bound_hits,
                             "f": s.f, "structure": self.group.structure})

    def precision(self) -> np.ndarray:
        """``S = BBᵀ`` as a dense array (O(p²) memory: for inspection and tests)."""
        b = np.asarray(self.group.dense(self.state.factor))
        return b @ b.T

    def __repr__(self) -> str:
        s = self.state
        return (f"Newton(structure={self.group.structure!r}, dim={self.dim}, iterations={s.iterations}, "
                f"f={s.f:.6g}, fbest={s.fbest:.6g})")


def minimize(f: Callable[..., Any], x0: Any, *, structure: str | MatrixGroup,
             grad: Callable[..., Any] | None = None, hvp: Callable[..., Any] | None = None,
             hess_diag: Callable[..., Any] | None = None, vectorized_hvp: bool = False,
             callback: Callable[[Newton], Any] | None = None, **options: Any) -> Result:
    """Minimise ``f`` from ``x0`` with the structured second-order method; returns a :class:`~es_ngd.Result`.

    ``result.evaluations`` counts calls of ``f`` (one per iteration), ``result.extra`` the gradients,
    Hessian-vector products and the final ``f(μ)``; ``sigma`` is 1 (the method has no global scale).
    See :class:`Newton` for the arguments and :class:`~es_ngd.newton.step.NewtonOptions` for the options.
    """
    opt = Newton(f, x0, structure=structure, grad=grad, hvp=hvp, hess_diag=hess_diag,
                 vectorized_hvp=vectorized_hvp, **options)
    return opt.run(callback)
