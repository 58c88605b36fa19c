"""``f``, ``∇f`` and batched Hessian-vector products of a torch function, by automatic differentiation.

Imported only when used: ``import es_ngd`` needs numpy alone. The products are forward-over-reverse
(``jvp`` of ``grad``), one per vector, vectorised with ``torch.func.vmap`` when ``f`` allows it (a loop
otherwise), so a product costs a small multiple of a gradient. The exact Hessian diagonal would cost
``p`` products; pass an analytic ``hess_diag`` or use ``diagonal="hutchinson"`` when ``p`` is large.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def autodiff(f: Callable[[Any], Any], *, dtype: Any = None,
             device: Any = None) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray],
                                          Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """``(value, grad, hvp)`` on numpy arrays for a torch function ``f(x) -> scalar tensor``.

    ``hvp(x, V)`` takes rows ``V`` of shape ``(m, p)`` and returns the rows ``∇²f(x) vⱼ``.
    """
    try:
        import torch
        from torch.func import grad, jvp, vmap
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("grad and hvp by autodiff need torch (pip install torch); "
                          "or pass grad= and hvp= callables") from err
    dtype = torch.float64 if dtype is None else dtype
    gradient = grad(f)
    state = {"vmap": True}

    def tensor(x: np.ndarray) -> Any:
        return torch.as_tensor(np.asarray(x, dtype=float), dtype=dtype, device=device)

    def value(x: np.ndarray) -> float:
        with torch.no_grad():
            return float(f(tensor(x)))

    def grad_np(x: np.ndarray) -> np.ndarray:
        return gradient(tensor(x)).detach().cpu().numpy()

    def hvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        xt, vt = tensor(x), tensor(v)

        def product(direction: Any) -> Any:
            return jvp(gradient, (xt,), (direction,))[1]

        if state["vmap"]:
            try:
                return vmap(product)(vt).detach().cpu().numpy()
            except RuntimeError:  # f uses an operation vmap cannot batch: one product at a time from now on
                state["vmap"] = False
        return torch.stack([product(row) for row in vt]).detach().cpu().numpy()

    return value, grad_np, hvp
