"""The options of :class:`~es_ngd.strategy.NGDES` and :func:`es_ngd.optimize`: their defaults and their checks.

Every value is checked once, in :func:`make_options`, against one table (:data:`_OPTION_CHECKS`, kept
complete by a test), so a bad option fails at construction with a message that names it and says
what is valid, instead of somewhere in the first generation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.backend import NOISE_KINDS
from es_ngd.shaping import SHAPERS, Shaper
from es_ngd.step_size import STEP_SIZE_CONTROLS
from es_ngd.termination import TerminationOptions

#: whether the rank-one evolution-path term is on by default (chosen by benchmarks/results/step_size/)
RANK_ONE_DEFAULT = True


@dataclass(frozen=True)
class Options(TerminationOptions):
    """Every option of :class:`NGDES` and :func:`es_ngd.optimize`, with its default.

    Learning rates left as ``None`` take the group's default ``η_B`` (MATH.md §2: xNES's
    ``(9 + 3 ln p)/(5 p^{3/2})`` for dense and triangular, SNES's ``(3 + ln p)/(5 √p)`` for diag,
    in between for the block groups). ``lr_sigma`` left as ``None`` takes SNES's rate ``(3 + ln p)/(5 √p)``
    under ``csa`` and ``tpa`` (σ is one scale parameter), and η_B under ``xnes`` (xNES's rule).
    σ moves by the ``step_size`` controller (MATH.md §2a); ``rank_one`` adds CMA-ES's evolution-path
    term to the B step (MATH.md §2b; not the natural gradient: ``rank_one=False`` is the exact mode).
    """

    step_size: str = "csa"  #: σ's controller: "csa", "tpa" or "xnes" (:mod:`es_ngd.step_size`)
    rank_one: bool = RANK_ONE_DEFAULT  #: add CMA's evolution-path term to the B step (:mod:`es_ngd.evolution_path`)
    mirrored: bool = False  #: sample ``z, −z`` pairs (standard for policy search)
    lr_mean: float = 1.0  #: η_μ
    lr_sigma: float | None = None  #: η_σ of σ's trace and entropy terms (default: SNES's rate; xnes: η_B)
    lr_factor: float | None = None  #: η_B (default: the group's η_B)
    entropy_weight: float = 0.0  #: γ, the weight of ``E[log q]`` (adds ``½ η_σ γ`` to log σ)
    shaping: str | Shaper = "xnes"  #: "xnes", "centered_ranks", "raw" or a callable f → u
    max_step: float = 1.0  #: bound on ``‖η_B M‖₂`` per step (MATH.md §5); counted when it acts
    nonfinite: str = "rank_last"  #: NaN/inf fitness: "rank_last" (with a warning) or "raise"
    accept_injected: bool = False  #: let ``tell`` take rows that ``ask`` did not produce (pycma's inject)
    dtype: str = "float64"  #: array dtype of the backend
    device: str | None = None  #: torch device ("cpu", "cuda", ...)
    #: where the normals are drawn: "host" (numpy's generator, the same numbers on every backend) or
    #: "device" (on the torch device, :mod:`es_ngd.device_noise`); None: "device" on CUDA, else "host"
    noise: str | None = None
    shape: tuple[int, int] | None = None  #: matrix shape of x, for Kronecker structures
    verbose: int = 0  #: > 0: print a pycma-like progress line (:meth:`NGDES.disp`) every 100 iterations


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(Options))
#: largest population size accepted (a checkpoint or a typo asking for 1e12 rows is refused, not allocated)
MAX_POPSIZE = 2**31 - 1


def _merge_options(inopts: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """pycma's options dict merged with keyword options (a name in both is an error)."""
    both = sorted(set(inopts) & set(options))
    if both:
        raise TypeError(f"option(s) {both} given both in the options dict and as keywords; pass each once")
    return {**inopts, **options}


def _is_number(value: Any) -> bool:
    # bool is an int to Python, but True as a tolerance or a budget is a mistake, not a number
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _number(minimum: float = -math.inf, *, above: bool = False, finite: bool = False, integer: bool = False,
            none: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A check for a numeric option, and the words that say what it accepts."""
    def check(value: Any) -> bool:
        if value is None:
            return none
        if integer:  # generation counts size the termination windows: a true integer, of a sane size
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and minimum <= value <= 2**31
        if not _is_number(value) or math.isnan(value) or (finite and math.isinf(value)):
            return False
        return value > minimum if above else value >= minimum

    if integer:
        return check, ("None or " if none else "") + f"an integer in [{minimum:g}, {2**31}]"
    kind = "a finite number" if finite else "a number"
    bound = "" if minimum == -math.inf else f" {'>' if above else '>='} {minimum:g}"
    return check, ("None or " if none else "") + kind + bound + ("" if bound else " (not NaN)")


def _choice(*values: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: isinstance(value, str) and value in values), "one of " + ", ".join(map(repr, values))


def _flag() -> tuple[Callable[[Any], bool], str]:
    return (lambda value: isinstance(value, (bool, np.bool_))), "True or False"


def _floating_dtype(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex)):  # np.dtype(None) would be float64
        return False
    try:  # a torch.dtype by its name ("torch.float32"), anything else as numpy reads it
        return np.dtype(str(value).replace("torch.", "") if type(value).__module__ == "torch" else value).kind == "f"
    except (TypeError, ValueError):
        return False


def _matrix_shape(value: Any) -> bool:
    return value is None or (isinstance(value, (tuple, list)) and len(value) == 2
                             and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                                     for n in value))


#: one check per field of Options (a test keeps this complete): (accepts(value), what is valid)
_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "ftarget": _number(),
    "maxfevals": _number(1),
    "maxiter": _number(1),
    "tolfun": _number(0),
    "tolx": _number(0),
    "max_condition": _number(1),
    "tolstagnation": _number(1, integer=True, none=True),
    "tolflatfitness": _number(0, integer=True),
    "tolnonfinite": _number(1, integer=True),
    "step_size": _choice(*sorted(STEP_SIZE_CONTROLS)),
    "rank_one": _flag(),
    "mirrored": _flag(),
    "lr_mean": _number(0, above=True, finite=True),
    "lr_sigma": _number(0, above=True, finite=True, none=True),
    "lr_factor": _number(0, above=True, finite=True, none=True),
    "entropy_weight": _number(0, finite=True),
    "shaping": ((lambda value: callable(value) or (isinstance(value, str) and value in SHAPERS)),
                "a fitness shaping name (" + ", ".join(map(repr, sorted(SHAPERS))) + ") or a callable f -> utilities"),
    "max_step": _number(0, above=True, finite=True),
    "nonfinite": _choice("rank_last", "raise"),
    "accept_injected": _flag(),
    "dtype": (_floating_dtype, "a floating dtype such as 'float64' or 'float32'"),
    "device": ((lambda value: value is None or isinstance(value, str) or hasattr(value, "type")),
               "None, a device name such as 'cuda' or a torch.device"),
    "noise": ((lambda value: value is None or (isinstance(value, str) and value in NOISE_KINDS)),
              "None, " + " or ".join(map(repr, NOISE_KINDS))),
    "shape": (_matrix_shape, "None or a pair of positive integers (rows, cols)"),
    "verbose": (lambda value: isinstance(value, (int, np.integer)), "an integer (0: quiet, 1: a line every 100 "
                "iterations, as pycma's verb_disp)"),
}


def make_options(**options: Any) -> Options:
    """The :class:`Options` for these keywords; every value is checked here, once, with a message that
    names the option and what it accepts."""
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; valid options: {sorted(OPTION_NAMES)}")
    for name, value in options.items():
        accepts, valid = _OPTION_CHECKS[name]
        if not accepts(value):
            raise ValueError(f"option {name} must be {valid}, got {value!r}")
    # numpy integers as Python ints: they size deques and go into the checkpoint's JSON
    return Options(**{name: int(value) if isinstance(value, np.integer) else value for name, value in options.items()})


def check_x0(x0: Any, *, allow_matrix: bool = True) -> tuple[np.ndarray, tuple[int, int] | None]:
    """``x0`` as a float64 numpy vector (a copy), and the matrix shape it came in (``allow_matrix``: a 2-D
    ``x0`` for the Kronecker structures is vectorised column-major), or a ValueError saying what is wrong."""
    arr = np.array(x0.detach().cpu().numpy() if hasattr(x0, "detach") else x0, dtype=float)
    shape = None
    if allow_matrix and arr.ndim == 2:
        shape = (int(arr.shape[0]), int(arr.shape[1]))
        arr = arr.reshape(-1, order="F")
    if arr.ndim != 1 or arr.size == 0:
        also = " (or a matrix for kron)" if allow_matrix else ""
        raise ValueError(f"x0 must be a non-empty 1-D array{also}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("x0 must be finite (it has NaN or inf entries)")
    return arr, shape
