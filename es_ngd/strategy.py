"""The ask/tell natural-gradient evolution strategy (MATH.md §2).

:class:`NGDES` is the object users drive, in pycma's shape (``ask``, ``tell``, ``stop``, ``result``).
The maths of one generation is the pure function :func:`natural_gradient_step` on a frozen
:class:`State`; the strategy only ever talks to its group through the group interface, so it
knows nothing of any group's insides.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_ngd.backend import Array, Backend, get_backend
from es_ngd.evolution_path import RankOnePath
from es_ngd.fitness import real_array
from es_ngd.groups import MatrixGroup, make_group
from es_ngd.groups.base import Factor, Tangent
from es_ngd.options import MAX_POPSIZE, OPTION_NAMES, Options, _is_number, _merge_options, check_x0, make_options  # noqa: F401  (importable from here too)
from es_ngd.population import Population
from es_ngd.shaping import Shaper, get_shaper, xnes_utilities
from es_ngd.step_size import ControlState, Generation, StepSizeControl, make_step_size
from es_ngd.termination import Termination

#: with verbose > 0, tell() prints a progress line at iterations 1, 2, 3 and every this many (pycma's verb_disp)
DISP_EVERY = 100


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
    evals_best: int = 0  #: ``evaluations`` when ``xbest`` was evaluated (pycma's ``evals_best``)
    step_size: ControlState = field(default_factory=dict)  #: the step-size controller's state (e.g. ``p_σ``)
    evolution_path: Array | None = None  #: ``p_c`` of the rank-one term, when it is on


@dataclass(frozen=True)
class Result:
    """What :attr:`NGDES.result` and :func:`es_ngd.optimize` return (arrays on the host).

    The names pycma's ``CMAEvolutionStrategy.result`` has mean the same here: ``xbest``, ``fbest``,
    ``evals_best``, ``evaluations``, ``iterations``, ``xfavorite`` (the mean), ``stds`` and ``stop``.
    """

    xbest: np.ndarray | None
    fbest: float
    evaluations: int
    iterations: int
    mean: np.ndarray
    sigma: float
    stop: dict[str, Any]
    step_bound_hits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    evals_best: int = 0  #: the evaluation count at which ``xbest`` was evaluated (0: none yet)
    stds: np.ndarray | None = None  #: per-coordinate standard deviations ``σ·sqrt(diag S)`` of the search

    @property
    def xfavorite(self) -> np.ndarray:
        """pycma's name for the distribution's mean, its best estimate of the optimum."""
        return self.mean


@dataclass(frozen=True)
class LearningRates:
    mean: float
    sigma: float
    factor: float


def natural_gradient_step(state: State, group: MatrixGroup, z: Array, utilities: np.ndarray, rates: LearningRates,
                          control: StepSizeControl, *, fitness: np.ndarray | None = None, has_test_pair: bool = False,
                          rank_one: RankOnePath | None = None, entropy_weight: float = 0.0,
                          max_step: float = 1.0) -> tuple[State, bool]:
    """One generation's update from noise rows ``z`` and utilities ``u`` (MATH.md §2).

    ``z`` is the ``(n, p)`` array, or an iterable of consecutive row chunks of it (device noise).

    The mean moves by ``η_μ σ B⁻ᵀ Σ uᵢ zᵢ``, B by the exact natural gradient of the trace-free part of
    G (plus the rank-one term when ``rank_one`` is given), and log σ by the natural gradient of the
    trace part, ``½ η_σ tr(G)/p``, plus the term ``control`` decides (MATH.md §2a).
    Returns the new state (counters untouched) and whether the step bound acted.
    """
    fitness = -utilities if fitness is None else fitness  # the same ranks
    g_delta, selected_step, trace_part, direction = _noise_statistics(
        group, [z] if group.backend.is_array(z) else z, utilities, fitness)
    mean = state.mean + (rates.mean * state.sigma) * group.sample(state.factor, g_delta[None, :])[0]
    generation = Generation(g_delta=g_delta, selected_step=selected_step, utilities=utilities, fitness=fitness,
                            has_test_pair=has_test_pair, mean_before=state.mean)
    sigma, control_state = control.update(state.step_size, state.sigma, generation)
    # the trace part of G is the part of the natural gradient that the trace-free B step leaves out: it
    # goes to σ, as in xNES (CMA-ES's rank-μ update moves C's scale alike); the entropy term's gradient too
    sigma *= math.exp(0.5 * rates.sigma * (trace_part + entropy_weight))
    path = state.evolution_path
    if rank_one is not None:
        stalled = control.stalls_evolution_path(control_state, state.iterations + 1)
        extra, path = rank_one.step(path, group, state.factor, None if stalled else selected_step, rates.factor)
        direction = {key: direction[key] + extra[key] for key in direction}  # tangents form a vector space
    step = -rates.factor
    size = rates.factor * group.magnitude(direction)
    bounded = size > max_step
    if bounded:
        step *= max_step / size
    factor = group.retract(state.factor, direction, step)
    return dataclasses.replace(state, mean=mean, sigma=sigma, factor=factor, step_size=control_state,
                               evolution_path=path), bounded


def _noise_statistics(group: MatrixGroup, chunks: Iterable[Array], utilities: np.ndarray,
                      fitness: np.ndarray) -> tuple[Array, Array | None, float, Tangent]:
    """What a generation's update needs from its noise rows, summed over ``chunks`` (consecutive row
    ranges of ``z``, in order): ``g_δ = Σ uᵢ zᵢ``, the selected step, ``tr(G)/p`` and the natural
    direction ``C ⊙ κ(G − tr(G)/p · I)``.

    All four are sums over rows (the direction is linear in ``G`` and its shift together), so device
    noise is regenerated and used one chunk at a time and the population's noise is never held whole.
    The selected step is ``Σ rᵢ zᵢ / √Σrᵢ²`` with ``r`` the xNES utilities of the fitness ranks: the
    evolution paths' input, rank-based whatever the shaping, as CMA-ES's recombination is (see
    :class:`~es_ngd.step_size.CSA`); with the default xNES shaping it is ``g_δ`` itself.
    """
    backend, p = group.backend, group.dim
    ranked = xnes_utilities(fitness)
    spread = float(np.sqrt((ranked**2).sum()))
    reuse = np.array_equal(ranked, utilities)
    u_all, r_all = backend.asarray(utilities), None if reuse or spread == 0.0 else backend.asarray(ranked)
    g_delta = selected = direction = None
    trace_part, start = 0.0, 0
    for z in chunks:
        stop = start + len(z)
        u = u_all[start:stop]
        shift = float(u @ backend.xp.einsum("ij,ij->i", z, z)) / p  # this chunk's tr(G)/p, forming neither G nor z²
        part = group.natural_direction(z, u, shift)
        g_part = u @ z
        s_part = None if r_all is None else r_all[start:stop] @ z
        if direction is None:
            g_delta, selected, direction, trace_part = g_part, s_part, part, shift
        else:  # tangents form a vector space
            g_delta, trace_part = g_delta + g_part, trace_part + shift
            selected = None if s_part is None else selected + s_part
            direction = {key: direction[key] + part[key] for key in direction}
        start = stop
    if start != len(utilities):
        raise ValueError(f"{start} noise rows for {len(utilities)} utilities")
    if spread == 0.0:  # all fitness values tied
        return g_delta, None, trace_part, direction
    return g_delta, (g_delta if reuse else selected) / spread, trace_part, direction


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
        if isinstance(structure, Mapping):
            # pycma's CMAEvolutionStrategy(x0, sigma0, inopts): the third argument is the options dict
            options = _merge_options(dict(structure), options)
            structure = options.pop("structure", "diag")
            popsize, seed = options.pop("popsize", popsize), options.pop("seed", seed)
            backend = options.pop("backend", backend)
        x0_arr, x0_shape = check_x0(x0)
        if isinstance(sigma0, (bool, np.bool_)):
            raise TypeError(f"sigma0 must be a number, got {sigma0!r}")
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
        if not _is_number(seed) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.backend = get_backend(backend, dtype=self.options.dtype, device=self.options.device,
                                   noise=self.options.noise)
        shape = self.options.shape or x0_shape
        self.group = make_group(structure, self.dim, self.backend, **({"shape": shape} if shape else {}))
        self.step_size = make_step_size(self.options.step_size, self.dim, self.popsize)
        factor_rate = self.options.lr_factor or self.group.default_learning_rate
        self.rates = LearningRates(mean=self.options.lr_mean, factor=factor_rate,
                                   sigma=self.options.lr_sigma or self.step_size.default_sigma_rate(factor_rate))
        self.shaper = get_shaper(self.options.shaping)
        self.rank_one = (RankOnePath(self.dim, self.popsize, self.group.num_parameters()) if self.options.rank_one
                         else None)
        self.state = State(mean=self.backend.asarray(x0_arr), sigma=sigma0, factor=self.group.identity(),
                           step_size=self.step_size.initial_state(self.backend),
                           evolution_path=None if self.rank_one is None else self.rank_one.initial_path(
                               self.backend, self.dim))
        self.termination = Termination(self.options, self.dim, self.popsize)
        self._pending: tuple[Population, Array, Array] | None = None
        self._numerical_error: str | None = None
        self._stop_cache: tuple[int, dict[str, Any]] | None = None
        self._disp_started: float | None = None  # time of the first disp() line
        self._last_best: float | None = None  # best f of the newest generation (for disp)

    def _check_popsize(self, n: Any) -> int:
        """``n`` as a population size for this strategy, or a ``ValueError`` that says why not."""
        if not _is_number(n) or not math.isfinite(n) or int(n) != n or not 2 <= n <= MAX_POPSIZE:
            raise ValueError(f"population size must be an integer in [2, {MAX_POPSIZE}], got {n!r}")
        if n < 3 and self.options.mirrored:
            # the two candidates z and -z get utilities u and -u, so Σ uᵢ zᵢzᵢᵀ = 0: neither the
            # shape of the distribution nor σ can adapt, and the search freezes
            raise ValueError("mirrored=True needs a population size >= 3 (got 2): a single mirrored pair gets "
                             "opposite utilities that cancel in the covariance and step-size updates")
        return int(n)

    # -- ask -------------------------------------------------------------------------------------
    def ask_population(self, n: int | None = None) -> Population:
        """The next population as a :class:`Population` (for evaluators that regenerate rows)."""
        n = self.popsize if n is None else self._check_popsize(n)
        s = self.state
        population = Population(mean=s.mean, sigma=s.sigma, factor=s.factor, group=self.group, seed=self.seed,
                                ask_id=s.asks, size=n, mirrored=self.options.mirrored,
                                test_direction=self.step_size.test_direction(s.step_size, self.group, s.factor, s.mean))
        z, x = population.draw()
        if isinstance(x, np.ndarray):
            # the population's own rows: read-only, so that whoever holds population.candidates() cannot
            # change what tell() compares against (torch tensors have no such flag; ask() hands out copies)
            x.flags.writeable = False
        population = dataclasses.replace(population, cache=x)
        self.state = dataclasses.replace(s, asks=s.asks + 1)
        self._pending = (population, z, x)
        return population

    def ask(self, n: int | None = None) -> Array:
        """``n`` (default: the population size) new candidates as an ``(n, p)`` array.

        A second ``ask`` before ``tell`` replaces the first: ``tell`` must answer the last one.
        The array is the caller's own copy: editing it (clipping into a box, say) is allowed, and
        ``tell`` then sees rows that ``ask`` did not produce (an error, or injected points with
        ``accept_injected=True``). With device noise it is the population's own tensor (no copy, so
        that the population is held once); ``tell`` recomputes the rows to compare, so edits are still
        caught.
        """
        population = self.ask_population(n)
        x = population.candidates()
        return x if not population.regenerable else self.backend.copy(x)

    # -- tell ------------------------------------------------------------------------------------
    def tell(self, X: Any, f: Any) -> None:
        """Update from the candidates ``X`` of the last :meth:`ask` and their fitness ``f`` (minimised).

        Raises ``ValueError`` (leaving the strategy exactly as it was) on wrong shapes, rows that
        the last ``ask`` did not produce (compared by value, so an array edited in place counts;
        unless ``accept_injected``), or non-finite fitness with ``nonfinite="raise"``, and
        ``TypeError`` on fitness that is not real numbers (complex, None, booleans, masked arrays).
        With the default ``nonfinite="rank_last"``, NaN/inf values rank last and a warning names
        how many there were.
        """
        if self._pending is None:
            raise RuntimeError("tell() needs a preceding ask(): there are no candidates awaiting fitness")
        population, z_asked, x_asked = self._pending
        n, p = population.size, self.dim
        fit = self._check_fitness(f, n)
        X = self.backend.asarray(X)
        if tuple(X.shape) != (n, p):
            raise ValueError(f"X must have shape {(n, p)} like the last ask(), got {tuple(X.shape)}")
        z = self._noise_of(X, population, z_asked, x_asked)

        nonfinite = ~np.isfinite(fit)
        if nonfinite.any():
            if self.options.nonfinite == "raise":
                raise ValueError(f"{int(nonfinite.sum())} of {n} fitness values are NaN or inf "
                                 f"(indices {np.flatnonzero(nonfinite).tolist()}); nothing was updated")
            warnings.warn(f"{int(nonfinite.sum())} of {n} fitness values are NaN or inf; ranked last",
                          RuntimeWarning, stacklevel=2)
            fit = np.where(nonfinite, np.inf, fit)
        utilities = np.asarray(self.shaper(fit), dtype=float)
        if utilities.shape != (n,):
            raise ValueError(f"fitness shaping must return {n} utilities, got shape {utilities.shape}")
        if not np.isfinite(utilities).all():
            raise ValueError(f"fitness shaping returned non-finite utilities {utilities.tolist()} for the fitness "
                             f"values {fit.tolist()}")

        old = self.state
        try:
            new, bounded = natural_gradient_step(old, self.group, z, utilities, self.rates, self.step_size,
                                                 fitness=fit, has_test_pair=population.test_direction is not None,
                                                 rank_one=self.rank_one, entropy_weight=self.options.entropy_weight,
                                                 max_step=self.options.max_step)
        except OverflowError:  # math.exp of a huge σ change (say, entropy_weight=1e300): a non-finite σ
            new, bounded = dataclasses.replace(old, sigma=math.inf), False
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
            xbest=self.backend.to_numpy(X[best]).copy() if improved else old.xbest,
            evals_best=old.evaluations + best + 1 if improved else old.evals_best,
        )
        self.termination.record(fit)
        self._pending = None
        self._last_best = float(fit[best])
        iterations = self.state.iterations
        if self.options.verbose > 0 and (iterations <= 3 or iterations % DISP_EVERY == 0):
            self.disp()

    @staticmethod
    def _check_fitness(f: Any, n: int) -> np.ndarray:
        try:
            fit = real_array(f)  # complex, None, booleans, strings and masked arrays are refused here
        except ValueError:  # a ragged list
            raise TypeError(f"fitness values must be {n} real numbers, got {f!r:.200}") from None
        if fit.ndim > 1 or fit.size != n:
            raise ValueError(f"expected {n} fitness values (one per row of the last ask), got shape {np.shape(f)}")
        return fit.reshape(-1)

    def _noise_of(self, X: Array, population: Population, z_asked: Array | None,
                  x_asked: Array) -> Array | Iterator[Array]:
        """The standard normal rows behind ``X``: the whole array when ask kept them, else (device
        noise) an iterator over :meth:`Population.chunks`, each regenerated and checked as it is used."""
        if z_asked is not None:
            return self._chunk_noise(X, z_asked, x_asked, 0)
        return (self._chunk_noise(X[rows], *population.chunk(rows), rows.start) for rows in population.chunks())

    def _chunk_noise(self, X: Array, z_asked: Array, x_asked: Array, first_row: int) -> Array:
        """The noise behind rows ``X`` (candidates from ``first_row`` on): the asked rows' own, or
        (injected) ``B(x − μ)/σ``.

        Rows are compared by value, never by identity: an array edited in place after ``ask`` is
        still the same object but no longer holds the asked points (one vectorised comparison).
        """
        equal = X == x_asked
        same_rows = self.backend.to_numpy(equal.all(1))
        if not same_rows.all():  # NaN candidates (from an overflowing σ) are equal to themselves here
            xp = self.backend.xp
            same_rows = self.backend.to_numpy((equal | (xp.isnan(X) & xp.isnan(x_asked))).all(1))
        if same_rows.all():
            return z_asked
        if not self.options.accept_injected:
            raise ValueError(f"rows {(first_row + np.flatnonzero(~same_rows)).tolist()} of X are not those of the "
                             "last ask() (edited after ask?); tell() must answer the last ask with its own rows "
                             "(pass accept_injected=True to tell changed rows as injected points)")
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
                      step_bound_hits=s.step_bound_hits, evals_best=s.evals_best, stds=self._stds())

    def _stds(self) -> np.ndarray:
        return self.state.sigma * np.sqrt(self.backend.to_numpy(self.group.variances(self.state.factor)))

    def disp(self) -> None:
        """Print one pycma-like progress line (a header first): iteration, evaluations, the last
        generation's best f, axis ratio ``sqrt(cond S)``, σ, min and max standard deviation, time."""
        s = self.state
        if self._disp_started is None:
            self._disp_started = time.monotonic()
            print("Iterat #Fevals   function value  axis ratio  sigma  min&max std  t[m:s]")
        minutes, seconds = divmod(time.monotonic() - self._disp_started, 60)
        stds = self._stds()
        axis_ratio = math.sqrt(max(float(self.group.condition_number(s.factor)), 1.0))
        f = s.fbest if self._last_best is None else self._last_best
        print(f"{s.iterations:6d} {s.evaluations:7d} {f:+.15e} {axis_ratio:7.1e} {s.sigma:8.2e} "
              f"{stds.min():6.0e} {stds.max():6.0e} {int(minutes)}:{seconds:04.1f}")

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

