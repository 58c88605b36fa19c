"""The ask/tell natural-gradient evolution strategy (MATH.md §2).

:class:`NGDES` is the object users drive, in pycma's shape (``ask``, ``tell``, ``stop``, ``result``).
The maths of one generation is the pure function :func:`natural_gradient_step` on a frozen
:class:`State`; the strategy only ever talks to its group through the group interface, so it
knows nothing of any group's insides.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_ngd.backend import Array, Backend, get_backend
from es_ngd.groups import MatrixGroup, make_group
from es_ngd.groups.base import Factor
from es_ngd.population import Population
from es_ngd.shaping import Shaper, get_shaper
from es_ngd.termination import Termination, TerminationOptions


@dataclass(frozen=True)
class Options(TerminationOptions):
    """Every option of :class:`NGDES` and :func:`es_ngd.optimize`, with its default.

    Learning rates left as ``None`` take the group's default ``η_B`` (MATH.md §2: xNES's
    ``(9 + 3 ln p)/(5 p^{3/2})`` for dense and triangular, SNES's ``(3 + ln p)/(5 √p)`` for diag,
    in between for the block groups), and ``lr_sigma`` takes the same value as ``lr_factor``.
    """

    mirrored: bool = False  #: sample ``z, −z`` pairs (standard for policy search)
    lr_mean: float = 1.0  #: η_μ
    lr_sigma: float | None = None  #: η_σ (default: the group's η_B)
    lr_factor: float | None = None  #: η_B (default: the group's η_B)
    entropy_weight: float = 0.0  #: γ, the weight of ``E[log q]`` (adds to the σ step only)
    shaping: str | Shaper = "xnes"  #: "xnes", "centered_ranks", "raw" or a callable f → u
    max_step: float = 1.0  #: bound on ``‖η_B M‖₂`` per step (MATH.md §5); counted when it acts
    nonfinite: str = "rank_last"  #: NaN/inf fitness: "rank_last" (with a warning) or "raise"
    accept_injected: bool = False  #: let ``tell`` take rows that ``ask`` did not produce (pycma's inject)
    dtype: str = "float64"  #: array dtype of the backend
    device: str | None = None  #: torch device ("cpu", "cuda", ...)
    shape: tuple[int, int] | None = None  #: matrix shape of x, for Kronecker structures


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(Options))


def make_options(**options: Any) -> Options:
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; valid options: {sorted(OPTION_NAMES)}")
    opts = Options(**options)
    for name in ("lr_mean", "lr_sigma", "lr_factor", "max_step"):
        value = getattr(opts, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (math.isfinite(opts.entropy_weight) and opts.entropy_weight >= 0):
        raise ValueError(f"entropy_weight must be >= 0, got {opts.entropy_weight!r}")
    if opts.nonfinite not in ("rank_last", "raise"):
        raise ValueError(f"nonfinite must be 'rank_last' or 'raise', got {opts.nonfinite!r}")
    get_shaper(opts.shaping)  # validates the name
    return opts


@dataclass(frozen=True)
class State:
    """Everything that defines the search at the start of a generation."""

    mean: Array
    sigma: float
    factor: Factor
    iterations: int = 0
    evaluations: int = 0
    asks: int = 0  #: number of ``ask`` calls: the noise key of the next one
    step_bound_hits: int = 0  #: generations in which the step bound of MATH.md §5 acted
    fbest: float = math.inf
    xbest: np.ndarray | None = None


@dataclass(frozen=True)
class Result:
    """What :attr:`NGDES.result` and :func:`es_ngd.optimize` return (arrays on the host)."""

    xbest: np.ndarray | None
    fbest: float
    evaluations: int
    iterations: int
    mean: np.ndarray
    sigma: float
    stop: dict[str, Any]
    step_bound_hits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LearningRates:
    mean: float
    sigma: float
    factor: float


def natural_gradient_step(state: State, group: MatrixGroup, z: Array, u: Array, rates: LearningRates,
                          *, entropy_weight: float = 0.0, max_step: float = 1.0) -> tuple[State, bool]:
    """One exact natural-gradient step from noise rows ``z`` and utilities ``u`` (MATH.md §2).

    Returns the new state (counters untouched) and whether the step bound acted.
    """
    p = group.dim
    g_delta = u @ z
    trace_part = float(u @ group.backend.xp.einsum("ij,ij->i", z, z)) / p  # tr(G)/p, forming neither G nor z²
    mean = state.mean + (rates.mean * state.sigma) * group.sample(state.factor, g_delta[None, :])[0]
    sigma = state.sigma * math.exp(0.5 * rates.sigma * (trace_part + entropy_weight))
    direction = group.natural_direction(z, u, trace_part)  # C ⊙ κ(G − G_σ I)
    step = -rates.factor
    size = rates.factor * group.magnitude(direction)
    bounded = size > max_step
    if bounded:
        step *= max_step / size
    factor = group.retract(state.factor, direction, step)
    return dataclasses.replace(state, mean=mean, sigma=sigma, factor=factor), bounded


def _check_x0(x0: Any) -> tuple[np.ndarray, tuple[int, int] | None]:
    arr = np.asarray(x0.detach().cpu().numpy() if hasattr(x0, "detach") else x0, dtype=float)
    shape = None
    if arr.ndim == 2:  # a matrix-shaped x0 (Kronecker structures): column-major vec
        shape = (int(arr.shape[0]), int(arr.shape[1]))
        arr = arr.reshape(-1, order="F")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"x0 must be a non-empty 1-D array (or a matrix for kron), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("x0 must be finite (it has NaN or inf entries)")
    return arr, shape


class NGDES:
    """Structured natural-gradient evolution strategy, ask/tell interface.

    >>> es = NGDES(np.ones(5), 0.5, structure="up:1", seed=1)
    >>> while not es.stop():
    ...     X = es.ask()
    ...     es.tell(X, [float((x ** 2).sum()) for x in X])
    >>> es.result.fbest < 1e-8
    True
    """

    def __init__(self, x0: Any, sigma0: float, structure: str | MatrixGroup = "diag",
                 popsize: int | None = None, seed: int | None = None, backend: str | Backend = "numpy",
                 **options: Any) -> None:
        x0_arr, x0_shape = _check_x0(x0)
        try:
            sigma0 = float(sigma0)
        except (TypeError, ValueError):
            raise TypeError(f"sigma0 must be a number, got {sigma0!r}") from None
        if not (math.isfinite(sigma0) and sigma0 > 0):
            raise ValueError(f"sigma0 must be a positive finite number, got {sigma0!r}")
        self.options = make_options(**options)
        self.dim = x0_arr.size
        self.popsize = self._check_popsize(4 + int(3 * math.log(self.dim)) if popsize is None else popsize)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.backend = get_backend(backend, dtype=self.options.dtype, device=self.options.device)
        shape = self.options.shape or x0_shape
        self.group = make_group(structure, self.dim, self.backend, **({"shape": shape} if shape else {}))
        self.rates = LearningRates(
            mean=self.options.lr_mean,
            sigma=self.options.lr_sigma or self.options.lr_factor or self.group.default_learning_rate,
            factor=self.options.lr_factor or self.group.default_learning_rate,
        )
        self.shaper = get_shaper(self.options.shaping)
        self.state = State(mean=self.backend.asarray(x0_arr), sigma=sigma0, factor=self.group.identity())
        self.termination = Termination(self.options, self.dim, self.popsize)
        self._pending: tuple[Population, Array, Array] | None = None
        self._numerical_error: str | None = None
        self._stop_cache: tuple[int, dict[str, Any]] | None = None

    @staticmethod
    def _check_popsize(n: Any) -> int:
        if isinstance(n, bool) or int(n) != n or n < 2:
            raise ValueError(f"population size must be an integer >= 2, got {n!r}")
        return int(n)

    # -- ask -------------------------------------------------------------------------------------
    def ask_population(self, n: int | None = None) -> Population:
        """The next population as a :class:`Population` (for evaluators that regenerate rows)."""
        n = self.popsize if n is None else self._check_popsize(n)
        s = self.state
        population = Population(mean=s.mean, sigma=s.sigma, factor=s.factor, group=self.group, seed=self.seed,
                                ask_id=s.asks, size=n, mirrored=self.options.mirrored)
        z, x = population.noise_and_candidates()
        population = dataclasses.replace(population, cache=x)
        self.state = dataclasses.replace(s, asks=s.asks + 1)
        self._pending = (population, z, x)
        return population

    def ask(self, n: int | None = None) -> Array:
        """``n`` (default: the population size) new candidates as an ``(n, p)`` array.

        A second ``ask`` before ``tell`` replaces the first: ``tell`` must answer the last one.
        """
        return self.ask_population(n).candidates()

    # -- tell ------------------------------------------------------------------------------------
    def tell(self, X: Any, f: Any) -> None:
        """Update from the candidates ``X`` of the last :meth:`ask` and their fitness ``f`` (minimised).

        Raises ``ValueError`` (leaving the strategy exactly as it was) on wrong shapes, rows that
        the last ``ask`` did not produce (unless ``accept_injected``), or non-finite fitness with
        ``nonfinite="raise"``. With the default ``nonfinite="rank_last"``, NaN/inf values rank last
        and a warning names how many there were.
        """
        if self._pending is None:
            raise RuntimeError("tell() needs a preceding ask(): there are no candidates awaiting fitness")
        population, z_asked, x_asked = self._pending
        n, p = population.size, self.dim
        fit = self._check_fitness(f, n)
        z = self._noise_of(X, z_asked, x_asked, (n, p))

        nonfinite = ~np.isfinite(fit)
        if nonfinite.any():
            if self.options.nonfinite == "raise":
                raise ValueError(f"{int(nonfinite.sum())} of {n} fitness values are NaN or inf "
                                 f"(indices {np.flatnonzero(nonfinite).tolist()}); nothing was updated")
            warnings.warn(f"{int(nonfinite.sum())} of {n} fitness values are NaN or inf; ranked last",
                          RuntimeWarning, stacklevel=2)
            fit = np.where(nonfinite, np.inf, fit)
        utilities = np.asarray(self.shaper(fit), dtype=float)
        if utilities.shape != (n,) or not np.isfinite(utilities).all():
            raise ValueError(f"fitness shaping must return {n} finite utilities, got shape {utilities.shape}")

        old = self.state
        new, bounded = natural_gradient_step(old, self.group, z, self.backend.asarray(utilities), self.rates,
                                             entropy_weight=self.options.entropy_weight,
                                             max_step=self.options.max_step)
        if not (math.isfinite(new.sigma) and new.sigma > 0 and math.isfinite(self.group.logdet(new.factor))
                and bool(self.backend.xp.isfinite(new.mean).all())):
            # a collapsed or overflowing search is a reason to stop, not a crash: keep the old distribution
            self._numerical_error = "the step produced a non-finite or singular distribution; kept the last one"
            new = old
        best = int(np.argmin(fit))
        improved = fit[best] < old.fbest
        self.state = dataclasses.replace(
            new,
            iterations=old.iterations + 1,
            evaluations=old.evaluations + n,
            step_bound_hits=old.step_bound_hits + int(bounded),
            fbest=float(fit[best]) if improved else old.fbest,
            xbest=self.backend.to_numpy(x_asked[best] if X is x_asked else self.backend.asarray(X)[best]).copy()
            if improved else old.xbest,
        )
        self.termination.record(fit)
        self._pending = None

    @staticmethod
    def _check_fitness(f: Any, n: int) -> np.ndarray:
        if hasattr(f, "detach"):
            f = f.detach().cpu().numpy()
        try:
            fit = np.asarray(f, dtype=float).reshape(-1) if np.ndim(f) <= 1 else None
        except (TypeError, ValueError):
            raise TypeError("fitness values must be real numbers") from None
        if fit is None or fit.shape != (n,):
            raise ValueError(f"expected {n} fitness values (one per row of the last ask), got shape {np.shape(f)}")
        return fit

    def _noise_of(self, X: Any, z_asked: Array, x_asked: Array, shape: tuple[int, int]) -> Array:
        """The standard normal rows behind ``X``: the asked ones, or (injected) ``B(x − μ)/σ``."""
        if X is x_asked:
            return z_asked
        X = self.backend.asarray(X)
        if tuple(X.shape) != shape:
            raise ValueError(f"X must have shape {shape} like the last ask(), got {tuple(X.shape)}")
        same_rows = self.backend.to_numpy((X == x_asked).all(1))
        if same_rows.all():
            return z_asked
        if not self.options.accept_injected:
            raise ValueError(f"rows {np.flatnonzero(~same_rows).tolist()} of X are not those of the last ask(); "
                             "tell() must answer the last ask (pass accept_injected=True to inject points)")
        if not bool(self.backend.xp.isfinite(X).all()):
            raise ValueError("injected rows of X must be finite")
        s = self.state
        z = self.group.whiten(s.factor, (X - s.mean) / s.sigma)
        # pycma's safeguard: an injected point far out in the tails would dominate the update
        limit = math.sqrt(self.dim) + 2.0 * self.dim / (self.dim + 2.0)
        norms = (z * z).sum(1) ** 0.5
        scale = self.backend.asarray(np.minimum(1.0, limit / np.maximum(self.backend.to_numpy(norms), 1e-300)))
        mask = self.backend.asarray(same_rows.astype(float))[:, None]
        return mask * z_asked + (1.0 - mask) * z * scale[:, None]

    # -- stop and result -------------------------------------------------------------------------
    def stop(self) -> dict[str, Any]:
        """The termination reasons that hold now (empty while the search should go on)."""
        s = self.state
        if self._stop_cache is not None and self._stop_cache[0] == s.iterations:
            return dict(self._stop_cache[1])
        # The condition number costs an SVD for dense and triangular factors (more than the step
        # itself), so, like pycma, which reads it off its lazily updated eigendecomposition, it is
        # checked every ⌈p/n⌉ generations; a function of the iteration count, so resumed runs agree.
        check_condition = s.iterations % math.ceil(self.dim / self.popsize) == 0
        reasons = self.termination.check(
            fbest=s.fbest, evaluations=s.evaluations, iterations=s.iterations, sigma=s.sigma,
            max_std=float(self.group.variances(s.factor).max()) ** 0.5,
            condition=self.group.condition_number(s.factor) if check_condition else 0.0,
            numerical_error=self._numerical_error)
        self._stop_cache = (s.iterations, reasons)
        return dict(reasons)

    @property
    def result(self) -> Result:
        s = self.state
        return Result(xbest=s.xbest, fbest=s.fbest, evaluations=s.evaluations, iterations=s.iterations,
                      mean=self.backend.to_numpy(s.mean).copy(), sigma=s.sigma, stop=self.stop(),
                      step_bound_hits=s.step_bound_hits)

    # -- checkpoints (es_ngd/checkpoint.py has the format and the decisions) ----------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: JSON values and numpy arrays (a pending ask is dropped)."""
        from es_ngd import checkpoint

        return checkpoint.state_dict(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output (same structure and dimension; keeps these options)."""
        from es_ngd import checkpoint

        checkpoint.load_state_dict(self, state_dict)

    def save(self, path: Any) -> None:
        """Write a checkpoint to ``path`` atomically (see :mod:`es_ngd.checkpoint`)."""
        from es_ngd import checkpoint

        checkpoint.save(self, path)

    @classmethod
    def load(cls, path: Any, *, shaping: Shaper | None = None, device: str | None = None) -> NGDES:
        """The strategy saved at ``path``; pass ``shaping=`` again if it was a custom function."""
        from es_ngd import checkpoint

        return checkpoint.load(path, shaping=shaping, device=device)

    # -- views -----------------------------------------------------------------------------------
    @property
    def mean(self) -> Array:
        return self.state.mean

    @property
    def sigma(self) -> float:
        return self.state.sigma

    def covariance(self) -> np.ndarray:
        """``σ² (BBᵀ)⁻¹`` as a dense host array (O(p³): for inspection and tests)."""
        b = self.backend.to_numpy(self.group.dense(self.state.factor))
        return self.state.sigma**2 * np.linalg.inv(b @ b.T)

    def __repr__(self) -> str:
        s = self.state
        return (f"NGDES(structure={self.group.structure!r}, dim={self.dim}, popsize={self.popsize}, "
                f"iterations={s.iterations}, evaluations={s.evaluations}, fbest={s.fbest:.6g}, sigma={s.sigma:.3g})")

