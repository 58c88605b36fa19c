"""Step-size controllers: how the global scale σ of ``N(μ, σ²(BBᵀ)⁻¹)`` moves (MATH.md §2a).

B always moves by the exact natural gradient of the trace-free part of G, and the mean update is the
same under every controller. log σ always takes the natural gradient of the trace part,
``½ η_σ tr(G)/p`` (xNES's rule: the part of G that the trace-free B step leaves out; the strategy adds
it), and a controller adds its own term, chosen by the ``step_size`` option. The controller also
names the default η_σ (:meth:`StepSizeControl.default_sigma_rate`):

- ``"csa"`` (default): cumulative step-size adaptation in the whitened frame. An evolution path of
  the normalised mean steps ``Σ uᵢ zᵢ``; σ grows when the path is longer than a random walk's and
  shrinks when it is shorter. Constants are CMA-ES's (Hansen's tutorial, arXiv:1604.00772, eqs. 43–44),
  except a damping 0.7 times CMA's (:attr:`CSA.damping_factor`, measured).
- ``"tpa"``: two-point adaptation (Hansen 2008, arXiv:0805.0231; constants of pycma 4.5's
  ``CMAAdaptSigmaTPA``). Candidates 0 and 1 of each population are a mirrored pair along the last
  mean shift; σ grows when the one ahead ranks better.
- ``"xnes"``: nothing more, so σ follows xNES's rule ``σ ← σ·exp(½ η_σ tr(G)/p)`` alone, with xNES's
  ``η_σ = η_B``. Kept for comparison and for the Fisher-information tests: it cannot shrink σ fast
  enough once p grows (../shared/design/STEP_SIZE.md, and benchmarks/results/step_size/).

Why η_σ is SNES's rate under CSA and TPA, whatever the group: σ is one scalar, so it is learnt like one of
SNES's per-coordinate scales, at ``(3 + ln p)/(5√p)``, not at the rate set for B's many entries (xNES's
``η_B`` for a dense B falls as p^{−3/2}: 0.016 at p = 40 against 0.21). A large η_σ under xNES's rule alone
broke every ill-conditioned problem (STEP_SIZE.md); beside CSA it does not, because CSA's path lengthens
when σ gets too small and pushes it back. Measured (benchmarks/results/step_size/sigma_rate/): dense's median
ERT ratio to CMA-ES on the built-in functions went from 1.01 to 0.92 at p = 10 and from 0.83 to 0.74 at
p = 40, and bbob's f8 is solved in 5 of 5 instances instead of 3. diag's η_B is that rate already, so diag
is unchanged.

Why both terms: CMA-ES also moves its scale two ways, by CSA on σ and through the trace of its rank-μ
update of C. With the trace dropped (es_ngd 0.2's first CSA) σ reacted only through the lagging path,
and the sphere needed 1.4× CMA-ES's evaluations at p = 10 (benchmarks/results/step_size/trace_term/).

A controller is a small object with pure methods (the strategy's :class:`~es_ngd.strategy.State`
holds its state, a dict of floats and backend arrays that checkpoints store as they are):
``initial_state``, ``test_direction`` (rows the next ask must contain, or None) and ``update``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.backend import Array, Backend
from es_ngd.groups.base import Factor, MatrixGroup, snes_learning_rate
from es_ngd.shaping import effective_selection_mass

ControlState = dict[str, Any]


@dataclass(frozen=True)
class Generation:
    """What a controller may read of one generation (the noise frame is the one of its ask)."""

    g_delta: Array  #: ``Σ uᵢ zᵢ``, the whitened mean step before η_μ
    selected_step: Array | None  #: ``Σ rᵢ zᵢ/√Σrᵢ²``, r the xNES utilities of the ranks (None: all tied)
    utilities: np.ndarray  #: ``u`` on the host, best largest
    fitness: np.ndarray  #: fitness with non-finite values replaced by +inf (host)
    has_test_pair: bool  #: whether candidates 0 and 1 were the controller's test pair
    mean_before: Array  #: the mean the generation was sampled around


def expected_chi_norm(p: int) -> float:
    """``E‖N(0, I_p)‖`` to O(p⁻³): ``√p (1 − 1/(4p) + 1/(21p²))``."""
    return math.sqrt(p) * (1.0 - 1.0 / (4 * p) + 1.0 / (21 * p * p))


class StepSizeControl(ABC):
    """How σ moves; one instance per strategy (it holds constants only, never state)."""

    name: str

    def __init__(self, dim: int, popsize: int) -> None:
        self.dim, self.popsize = dim, popsize

    def initial_state(self, backend: Backend) -> ControlState:
        return {}

    def test_direction(self, state: ControlState, group: MatrixGroup, factor: Factor, mean: Array) -> Array | None:
        """A unit vector in the whitened frame of the next ask along which candidates 0 and 1 lie, or None."""
        return None

    @abstractmethod
    def update(self, state: ControlState, sigma: float, generation: Generation) -> tuple[float, ControlState]:
        """σ after this controller's term (before the strategy adds the trace term), and its new state."""

    def stalls_evolution_path(self, state: ControlState, generations: int) -> bool:
        """Whether σ is growing fast enough that the rank-one path should not take this step (CMA's h_σ = 0)."""
        return False

    def default_sigma_rate(self, factor_rate: float) -> float:
        """η_σ of σ's trace term when ``lr_sigma`` is not given: SNES's rate for one scale parameter."""
        return snes_learning_rate(self.dim)

    def describe(self) -> dict[str, float]:
        """The controller's constants (for logs and the README)."""
        return {}


class XNESStepSize(StepSizeControl):
    """No term of its own: σ moves by the trace part of the natural gradient only (xNES)."""

    name = "xnes"

    def default_sigma_rate(self, factor_rate: float) -> float:
        return factor_rate  # xNES's η_σ = η_B: this controller is es_ngd 0.1's rule exactly

    def update(self, state: ControlState, sigma: float, generation: Generation) -> tuple[float, ControlState]:
        return sigma, state


class CSA(StepSizeControl):
    """Cumulative step-size adaptation on the path ``p_σ`` of normalised, selected whitened steps.

    The path accumulates ``Σ rᵢ zᵢ / √Σrᵢ²`` with ``r`` the xNES utilities of the fitness *ranks*,
    whatever the shaping (with the default xNES shaping that is ``g_δ``, the mean step itself). Given
    the ranks, that step is ``N(0, I)`` under random selection, so ``p_σ`` is standard normal when
    selection carries no information. The utilities of ``"raw"`` or ``"centered_ranks"`` shaping would
    not do: their negative weights grow towards the worst points, whose steps are the longest near an
    optimum, so the path stays long there and σ does not shrink.
    """

    name = "csa"
    #: d_σ is CMA-ES's times this. With σ also taking the trace term, 0.7 needed 0.80–1.01× the evaluations
    #: of 1.0 for dense on the built-in functions at p = 10 and 40 (diag on different-powers at p = 40: 1.16×)
    #: and kept IPOP's Rastrigin, a noisy sphere and popsize 100 working (benchmarks/results/step_size/trace_term/)
    damping_factor = 0.7

    def __init__(self, dim: int, popsize: int) -> None:
        super().__init__(dim, popsize)
        mu_eff = effective_selection_mass(popsize)
        self.c_sigma = (mu_eff + 2.0) / (dim + mu_eff + 5.0)
        self.damping = self.damping_factor * (
            1.0 + 2.0 * max(0.0, math.sqrt((mu_eff - 1.0) / (dim + 1.0)) - 1.0) + self.c_sigma)
        self.chi = expected_chi_norm(dim)
        self.path_weight = math.sqrt(self.c_sigma * (2.0 - self.c_sigma))

    def initial_state(self, backend: Backend) -> ControlState:
        return {"path": backend.zeros(self.dim)}

    def update(self, state: ControlState, sigma: float, generation: Generation) -> tuple[float, ControlState]:
        if generation.selected_step is None:  # all utilities equal: nothing learnt about the step size
            return sigma, state
        path = (1.0 - self.c_sigma) * state["path"] + self.path_weight * generation.selected_step
        length = float((path * path).sum()) ** 0.5
        # pycma caps one change of log σ at 1 (a factor e), so one wild generation cannot blow σ up
        change = min(1.0, (self.c_sigma / self.damping) * (length / self.chi - 1.0))
        return sigma * math.exp(change), {"path": path}

    def stalls_evolution_path(self, state: ControlState, generations: int) -> bool:
        # pycma's h_σ: while ‖p_σ‖ is much longer than a random walk's (σ still growing, e.g. on a slope or
        # after a bad start), the mean moves fast and a rank-one path fed with it would stretch C along
        # that move; the test corrects for p_σ starting at 0
        path = state["path"]
        squared = float((path * path).sum()) / (1.0 - (1.0 - self.c_sigma) ** (2 * generations))
        return squared / self.dim >= 2.0 + 4.0 / (self.dim + 1)

    def describe(self) -> dict[str, float]:
        return {"c_sigma": self.c_sigma, "d_sigma": self.damping}


class TPA(StepSizeControl):
    """Two-point adaptation: candidates 0 and 1 are ``±‖z₀‖·v̂``, with v̂ the whitened last mean shift.

    ``r = (#{f < f₁} − #{f < f₀})/(n − 1)`` is positive when the point ahead ranks better;
    ``s ← 0.7 s + 0.3 sign(r)|r|^½`` and ``σ ← σ·exp(s/d)``, ``d = 0.7 + 2 ln p + 2 ln max(1, n − p)``
    (pycma 4.5). The two test points are not draws from q, which biases the mean and B updates a
    little; all n points enter them.
    """

    name = "tpa"
    smoothing = 0.3
    exponent = 0.5

    def __init__(self, dim: int, popsize: int) -> None:
        super().__init__(dim, popsize)
        self.damping = 0.7 + 2.0 * math.log(dim) + 2.0 * math.log(max(1, popsize - dim))

    def initial_state(self, backend: Backend) -> ControlState:
        return {"s": 0.0, "previous_mean": None}

    def test_direction(self, state: ControlState, group: MatrixGroup, factor: Factor, mean: Array) -> Array | None:
        previous = state["previous_mean"]
        if previous is None:
            return None
        v = group.whiten(factor, (mean - previous)[None, :])[0]
        length = float((v * v).sum()) ** 0.5
        if not (length > 0.0 and math.isfinite(length)):
            return None
        return v / length

    def update(self, state: ControlState, sigma: float, generation: Generation) -> tuple[float, ControlState]:
        s = state["s"]
        f = generation.fitness
        if generation.has_test_pair and len(f) > 2:
            r = (int((f < f[1]).sum()) - int((f < f[0]).sum())) / (len(f) - 1)
            s = (1.0 - self.smoothing) * s + self.smoothing * math.copysign(abs(r) ** self.exponent, r)
            sigma = sigma * math.exp(s / self.damping)
        return sigma, {"s": s, "previous_mean": generation.mean_before}

    def describe(self) -> dict[str, float]:
        return {"d_sigma": self.damping, "c_s": self.smoothing}


STEP_SIZE_CONTROLS: dict[str, type[StepSizeControl]] = {"csa": CSA, "tpa": TPA, "xnes": XNESStepSize}


def make_step_size(name: str, dim: int, popsize: int) -> StepSizeControl:
    try:
        cls = STEP_SIZE_CONTROLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown step_size {name!r}; valid: {sorted(STEP_SIZE_CONTROLS)}") from None
    return cls(dim, popsize)


__all__ = ["CSA", "STEP_SIZE_CONTROLS", "TPA", "ControlState", "Generation", "StepSizeControl", "XNESStepSize",
           "make_step_size"]
