"""One ask/tell adapter per solver, so the runner drives every solver through the same loop.

Solvers are named by strings:

- ``"ngd:STRUCTURE"``: :class:`es_ngd.NGDES` with that structure (``ngd:dense``, ``ngd:up:2``, …),
  optionally followed by ``@OPTION=VALUE`` pairs that set NGDES options (``ngd:dense@step_size=xnes``,
  ``ngd:up:2@rank_one=false@step_size=tpa``): how the report compares settings in one run;
- ``"cma"``: pycma's CMA-ES with its default settings (full covariance, active update);
- ``"sep-cma"``: pycma with ``CMA_diagonal=True`` (diagonal covariance throughout);
- ``"vkd-cma"``: pycma with the VkD sampler (covariance = diagonal × (identity + rank k), k adapted).

pycma is driven through its public ``CMAEvolutionStrategy.ask``/``tell``/``stop`` only, with the
same ``x0``, ``sigma0``, seed, ``maxfevals`` and ``ftarget`` that es_ngd gets, and its default
population size ``4 + ⌊3 ln p⌋``, which is es_ngd's default too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

NGD_PREFIX = "ngd:"


def _sep_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {**opts, "CMA_diagonal": True}


def _vkd_options(opts: dict[str, Any]) -> dict[str, Any]:
    from cma.restricted_gaussian_sampler import GaussVkDSampler

    return GaussVkDSampler.extend_cma_options(dict(opts))


#: pycma variants: name → (label, function adding the variant's options to the common ones)
CMA_VARIANTS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "cma": ("CMA-ES (full covariance)", dict),
    "sep-cma": ("sep-CMA-ES (CMA_diagonal=True)", _sep_options),
    "vkd-cma": ("VkD-CMA-ES (GaussVkDSampler)", _vkd_options),
}

#: the solver every ratio is taken against
BASELINE = "cma"


class Solver(Protocol):
    """What the runner needs from a solver (pycma's ask/tell shape)."""

    popsize: int

    def ask(self) -> np.ndarray: ...  # (popsize, p) candidates

    def tell(self, X: np.ndarray, f: np.ndarray) -> None: ...

    def stop(self) -> dict[str, Any]: ...  # the solver's own termination reasons; empty to go on


def parse_ngd_solver(name: str) -> tuple[str, dict[str, Any]]:
    """Split ``"ngd:STRUCTURE@KEY=VALUE@…"`` into the structure and its NGDES options.

    Values ``true``/``false`` are booleans, numbers are numbers, anything else a string.
    """
    structure, *pairs = name[len(NGD_PREFIX):].split("@")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"solver {name!r}: options are written @OPTION=VALUE, got {pair!r}")
        options[key] = _option_value(text)
    return structure, options


def _option_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def validate_solver_name(name: str) -> str:
    """``name`` if it names a solver, else a ValueError listing the valid names."""
    if name.startswith(NGD_PREFIX):
        from es_ngd.groups import parse_structure
        from es_ngd.strategy import make_options

        structure, options = parse_ngd_solver(name)
        parse_structure(structure)  # raises with the list of valid structures
        try:
            make_options(**options)
        except TypeError as error:  # an unknown option name
            raise ValueError(f"solver {name!r}: {error}") from None
        return name
    if name not in CMA_VARIANTS:
        raise ValueError(f"unknown solver {name!r}; valid pycma solvers: {', '.join(CMA_VARIANTS)}")
    return name


class NGDSolver:
    """:class:`es_ngd.NGDES` as it is: it already has pycma's ask/tell/stop shape."""

    def __init__(self, name: str, x0: np.ndarray, sigma0: float, seed: int, maxfevals: int,
                 ftarget: float, shape: tuple[int, int] | None = None) -> None:
        import es_ngd
        from es_ngd.groups import parse_structure

        structure, options = parse_ngd_solver(name)
        if shape is not None and parse_structure(structure)[0] == "kron":
            options.setdefault("shape", shape)  # only kron(…) takes a matrix shape; others refuse one
        self.es = es_ngd.NGDES(x0, sigma0, structure=structure, seed=seed, maxfevals=maxfevals,
                               ftarget=ftarget, **options)
        self.popsize = self.es.popsize

    def ask(self) -> np.ndarray:
        return self.es.ask()

    def tell(self, X: np.ndarray, f: np.ndarray) -> None:
        self.es.tell(X, f)

    def stop(self) -> dict[str, Any]:
        return self.es.stop()


class CMASolver:
    """A pycma ``CMAEvolutionStrategy`` variant, silenced (no console output, no ``outcmaes/`` files)."""

    def __init__(self, variant: str, x0: np.ndarray, sigma0: float, seed: int, maxfevals: int,
                 ftarget: float) -> None:
        import cma

        if seed < 1:  # pycma reads seed 0 (and None) as "seed from the clock": not reproducible
            raise ValueError(f"pycma needs a seed >= 1 to be reproducible, got {seed}")
        common = {"seed": seed, "maxfevals": maxfevals, "ftarget": ftarget,
                  "verbose": -9, "verb_disp": 0, "verb_log": 0}
        options = CMA_VARIANTS[variant][1](common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "VkD sampler is experimental": not the user's concern here
            self.es = cma.CMAEvolutionStrategy(np.array(x0, dtype=float), sigma0, options)
        self.popsize = int(self.es.popsize)
        self._asked: list[np.ndarray] | None = None

    def ask(self) -> np.ndarray:
        self._asked = self.es.ask()
        return np.array(self._asked)

    def tell(self, X: np.ndarray, f: np.ndarray) -> None:
        # pycma wants the very list that ask() returned (it may check identity for injected solutions)
        solutions = self._asked if self._asked is not None else list(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flat-fitness and similar notices; the stop() reasons carry them
            self.es.tell(solutions, [float(v) for v in f])
        self._asked = None

    def stop(self) -> dict[str, Any]:
        return dict(self.es.stop())


def make_solver(name: str, x0: np.ndarray, sigma0: float, seed: int, maxfevals: int,
                ftarget: float, shape: tuple[int, int] | None = None) -> Solver:
    """The solver named ``name`` (see the module docstring), started at ``x0`` with step size ``sigma0``.

    ``shape`` is the matrix shape of x for problems on matrices: es_ngd's ``kron(…)`` structures get
    it as their ``shape`` option; every other solver ignores it (x stays a vector for them).
    """
    validate_solver_name(name)
    maxfevals = int(maxfevals)
    ftarget = float(ftarget) if math.isfinite(ftarget) else -math.inf
    if name.startswith(NGD_PREFIX):
        return NGDSolver(name, x0, sigma0, seed, maxfevals, ftarget, shape)
    return CMASolver(name, x0, sigma0, seed, maxfevals, ftarget)
