"""Structured second-order optimisation with the same groups as the evolution strategy (MATH.md §6).

For objectives with gradients and Hessian-vector products (autodiff models, simulators with adjoints)::

    from es_ngd import newton
    result = newton.minimize(f, x0, structure="hier:1,1", grad=grad, hvp=hvp, hess_diag=hess_diag)

``μ ← μ − β S⁻¹∇f(μ)`` and ``B ← B·h(β C⊙κ(B⁻¹∇²f(μ)B⁻ᵀ − I))`` with ``S = BBᵀ`` in the chosen group:
``k`` (``up:K``/``low:K``) or ``K1 + K2`` (hierarchical) Hessian-vector products and the Hessian's diagonal
per iteration, never a ``p×p`` matrix. :class:`Newton` is the step-by-step object, :func:`newton_step` the
pure function behind it; :func:`~es_ngd.newton.autodiff.autodiff` builds ``grad`` and ``hvp`` from a torch
function (torch is imported only then).
"""

from es_ngd.newton.optimizer import Newton, minimize
from es_ngd.newton.oracle import Oracle
from es_ngd.newton.step import NewtonOptions, NewtonState, initial_state, newton_step

__all__ = ["Newton", "NewtonOptions", "NewtonState", "Oracle", "initial_state", "minimize", "newton_step"]
