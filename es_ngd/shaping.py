"""Fitness shaping: fitness values (lower is better) → utilities ``u`` with ``Σ u = 0``, best largest.

Every shaper ranks with ties sharing the average utility of their ranks, so a population of equal
fitness values gives ``u = 0`` (no step) instead of a step driven by an arbitrary tie order.
Non-finite values must be replaced by ``+inf`` before shaping (the strategy does that): they then
rank last.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

Shaper = Callable[[np.ndarray], np.ndarray]


def _tie_averaged(f: np.ndarray, by_rank: np.ndarray) -> np.ndarray:
    """Give sample i the utility ``by_rank[rank(i)]``, averaged over tied fitness values."""
    order = np.argsort(f, kind="stable")
    sorted_f = f[order]
    utilities = np.empty_like(by_rank)
    new_run = np.empty(len(f), dtype=bool)  # runs of equal values in the sorted fitness
    new_run[0], new_run[1:] = True, sorted_f[1:] != sorted_f[:-1]
    if new_run.all():  # no ties (the usual case)
        utilities[order] = by_rank
        return utilities
    starts = np.flatnonzero(new_run)
    counts = np.diff(starts, append=len(f))
    if len(starts) == 1:  # all equal: exactly no step, not round-off of the mean utility
        return np.zeros_like(by_rank)
    utilities[order] = np.repeat(np.add.reduceat(by_rank, starts) / counts, counts)
    return utilities


def xnes_weights(n: int) -> np.ndarray:
    """The positive xNES weights ``max(0, ln(n/2+1) − ln i)/Σ`` (best first), without the −1/n baseline."""
    w = np.maximum(0.0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    return w / w.sum()


def effective_selection_mass(n: int) -> float:
    """CMA-ES's variance-effective selection mass ``1/Σwᵢ²`` of the xNES weights of ``n`` candidates."""
    return 1.0 / float((xnes_weights(n) ** 2).sum())


@functools.lru_cache(maxsize=16)
def _xnes_by_rank(n: int) -> np.ndarray:
    by_rank = xnes_weights(n) - 1.0 / n
    by_rank.flags.writeable = False  # shared between calls
    return by_rank


def xnes_utilities(f: np.ndarray) -> np.ndarray:
    """xNES utilities: ``max(0, ln(n/2 + 1) − ln i) / Σⱼ max(0, ln(n/2 + 1) − ln j) − 1/n`` for rank i."""
    return _tie_averaged(f, _xnes_by_rank(len(f)))


def centered_ranks(f: np.ndarray) -> np.ndarray:
    """Centred ranks (OpenAI-ES): linear in the rank, best largest, scaled so that ``Σ|u| = 1``
    like the xNES utilities (so the same learning rates apply)."""
    n = len(f)
    by_rank = 0.5 - np.arange(n) / max(n - 1, 1)
    return _tie_averaged(f, by_rank / np.abs(by_rank).sum())


def raw_baseline(f: np.ndarray) -> np.ndarray:
    """Raw fitness with the mean as baseline, standardised: ``−(f − mean f) / (n · std f)``.

    Infinite values (ranked last by the others) are clipped to the worst finite value here.
    """
    f = np.asarray(f, dtype=float)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros_like(f)
    f = np.where(finite, f, f[finite].max())
    if f.max() == f.min():
        return np.zeros_like(f)
    with np.errstate(over="ignore", under="ignore"):
        std = f.std()
    if not (np.isfinite(std) and std > 0):
        # values near the float range's ends (±1e308 overflow the variance, 1e-320 underflows it):
        # the utilities do not depend on the scale, so divide it out first (rarely needed, so the
        # usual case keeps its exact rounding)
        f = f / np.abs(f).max()
        std = f.std()
    return -(f - f.mean()) / (len(f) * std)


SHAPERS: dict[str, Shaper] = {"xnes": xnes_utilities, "centered_ranks": centered_ranks, "raw": raw_baseline}


def get_shaper(shaping: str | Shaper) -> Shaper:
    if callable(shaping):
        return shaping
    try:
        return SHAPERS[shaping]
    except KeyError:
        raise ValueError(f"unknown fitness shaping {shaping!r}; valid: {sorted(SHAPERS)} or a callable") from None
