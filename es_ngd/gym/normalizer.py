"""Observation statistics and the frozen normaliser of one generation (numpy only).

:class:`RunningStats` holds count, mean and the sum of squared deviations ``M2`` of the observations
seen so far (Welford's form). Statistics from different workers are *merged* with Chan, Golub and
LeVeque's pairwise formula, which gives the statistics of the concatenated observations (up to
round-off), not an average of averages; so every worker and every evaluator kind (serial, vectorised,
Ray) contributes exactly what it saw. During a generation the statistics are frozen into a
:class:`Normalizer` (mean, standard deviation, clip) that every candidate uses, and updated from all
candidates' observations after it, in candidate order, so a run is reproducible bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Normalised observations are clipped to ±this many standard deviations (stable-baselines' VecNormalize
#: default): one outlying observation early in a run must not produce huge policy inputs.
CLIP = 10.0
#: Floor of the standard deviation, so a constant observation coordinate does not divide by zero.
MIN_STD = 1e-8


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations of observation vectors of dimension ``dim``."""

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> RunningStats:
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, observations: np.ndarray) -> RunningStats:
        """The statistics of a batch of observations (rows)."""
        obs = np.asarray(observations, dtype=float).reshape(len(observations), -1)
        if not len(obs):
            return cls.empty(obs.shape[1])
        mean = obs.mean(0)
        return cls(float(len(obs)), mean, ((obs - mean) ** 2).sum(0))

    def merge(self, other: RunningStats) -> RunningStats:
        """The statistics of both sets of observations together (Chan et al.'s pairwise update)."""
        if other.count == 0:
            return RunningStats(self.count, self.mean.copy(), self.m2.copy())
        if self.count == 0:
            return RunningStats(other.count, other.mean.copy(), other.m2.copy())
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / count)
        return RunningStats(count, mean, m2)

    @property
    def var(self) -> np.ndarray:
        return self.m2 / self.count if self.count > 0 else np.ones_like(self.mean)

    def frozen(self, clip: float = CLIP) -> Normalizer:
        """The normaliser every candidate of the next generation uses (identity before any observation)."""
        if self.count == 0:
            return Normalizer(np.zeros_like(self.mean), np.ones_like(self.mean), clip)
        return Normalizer(self.mean.copy(), np.maximum(np.sqrt(self.var), MIN_STD), clip)

    def to_arrays(self, prefix: str = "obs_") -> dict[str, np.ndarray]:
        return {f"{prefix}count": np.array(self.count), f"{prefix}mean": self.mean, f"{prefix}m2": self.m2}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str = "obs_") -> RunningStats:
        return cls(float(arrays[f"{prefix}count"]), np.array(arrays[f"{prefix}mean"], dtype=float),
                   np.array(arrays[f"{prefix}m2"], dtype=float))


@dataclass(frozen=True)
class Normalizer:
    """``clip((obs − mean) / std, ±clip)``; ``None`` in place of a normaliser means raw observations."""

    mean: np.ndarray
    std: np.ndarray
    clip: float = CLIP

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / self.std, -self.clip, self.clip)


def merge_all(stats: RunningStats, batches: list[RunningStats | None]) -> RunningStats:
    """``stats`` merged with every batch in order (``None`` entries, from failed candidates, skipped)."""
    for batch in batches:
        if batch is not None:
            stats = stats.merge(batch)
    return stats
