"""What counts as a fitness value: real numbers only, checked once for ``tell`` and every evaluator.

NumPy's ``float()`` and ``asarray(dtype=float)`` accept far more than a fitness: a complex value loses
its imaginary part with only a ``ComplexWarning``, ``None`` becomes NaN (ranked last as if the
objective had failed), ``True`` becomes 1, and a masked array drops its mask. Each of those hides a
bug in the objective, so they are refused here with a ``TypeError`` that says what was received.
NaN and ±inf *are* real numbers: the strategy ranks them last (option ``nonfinite``).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _to_host(values: Any) -> Any:
    """A torch tensor as a numpy array; anything else unchanged."""
    return values.detach().cpu().numpy() if hasattr(values, "detach") else values


def _kind_error(dtype: np.dtype, what: str) -> TypeError | None:
    """Why values of ``dtype`` are no fitness values (None when they are)."""
    if dtype.kind == "c":
        return TypeError(f"{what} complex; fitness must be real (take .real or abs() in the objective "
                         "if that is what is meant)")
    if dtype.kind == "b":
        return TypeError(f"{what} booleans; fitness must be real numbers (convert explicitly, e.g. float(ok))")
    if dtype.kind not in "iuf":
        return TypeError(f"{what} of dtype {dtype}; fitness must be real numbers (None, strings and objects "
                         "are not)")
    return None


def real_array(values: Any, what: str = "fitness values are") -> np.ndarray:
    """``values`` as a float64 numpy array, refusing anything that is not real numbers (see the module)."""
    values = _to_host(values)
    if isinstance(values, np.ma.MaskedArray):
        raise TypeError(f"{what} a masked array; fill the masked entries first (e.g. f.filled(np.nan) ranks "
                        "them last)")
    array = np.asarray(values)
    if array.dtype == object:  # a list mixing numbers with None, strings, complex, arrays...
        bad = [v for v in array.reshape(-1) if not _is_real_scalar(v)]
        if bad:
            raise TypeError(f"{what} not all real numbers: found {bad[0]!r} ({type(bad[0]).__name__})")
        array = array.astype(float)
    error = _kind_error(array.dtype, what)
    if error is not None:
        raise error
    return array.astype(float, copy=False)


def _is_real_scalar(value: Any) -> bool:
    return (isinstance(value, (numbers.Real, np.floating, np.integer))
            and not isinstance(value, (bool, np.bool_)))


def scalar_fitness(value: Any, index: int | None = None) -> float:
    """The one number an objective returned for one candidate, or a ``TypeError`` that says what it
    returned instead, for which candidate, and how to return several values at once."""
    value = _to_host(value)
    where = "" if index is None else f" for candidate {index}"
    if _is_real_scalar(value):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        error = _kind_error(value.dtype, f"the objective returned a 0-d array{where} that is")
        if error is not None:
            raise error
        return float(value)
    if value is None:
        raise TypeError(f"the objective returned None{where}; it must return a real number (a missing "
                        "`return`?)")
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError(f"the objective returned the complex value {value!r}{where}; fitness must be real "
                        "(take .real or abs() if that is what is meant)")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"the objective returned the boolean {value!r}{where}; fitness must be a real number")
    if isinstance(value, (list, tuple, np.ndarray)):
        raise TypeError(f"the objective returned {type(value).__name__} of shape {np.shape(value)}{where}; "
                        "it must return one number per candidate (to evaluate the whole (n, p) population "
                        "in one call and return n values, pass vectorized=True)")
    raise TypeError(f"the objective returned {value!r} ({type(value).__name__}){where}; it must return a "
                    "real number")


def population_fitness(values: Any, n: int) -> np.ndarray:
    """The ``n`` values a vectorised objective returned for a population (or chunk) of ``n`` rows."""
    out = real_array(values, "the objective's values are").reshape(-1)
    if out.shape != (n,):
        hint = (" (with vectorized=True, f gets the whole (n, p) population and returns n values)"
                if np.ndim(values) == 0 else "")
        raise ValueError(f"the objective returned {out.size} values for {n} candidates{hint}")
    return out


__all__ = ["population_fitness", "real_array", "scalar_fitness"]
