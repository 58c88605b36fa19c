"""Which Gymnasium spaces a policy can serve, and how its raw outputs become actions.

Observations: a flat ``Box`` (images and dict/tuple spaces are refused with a message that says what
to wrap them with). Actions: ``Discrete(n)`` by argmax over ``n`` outputs; a 1-D ``Box`` with one
output per dimension, clipped to its bounds, or (``squash=True``) mapped through ``tanh`` onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class UnsupportedSpaceError(ValueError):
    """The environment's observation or action space is not one a flat policy can serve."""


@dataclass(frozen=True)
class ActionMap:
    """Raw policy outputs ``(k, act_dim)`` → actions for ``k`` environments."""

    discrete: bool
    act_dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    squash: bool = False
    dtype: Any = np.float32

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        if self.discrete:
            return np.argmax(outputs, axis=1)
        if self.squash:
            actions = self.low + (np.tanh(outputs) + 1.0) * (0.5 * (self.high - self.low))
        else:
            actions = np.clip(outputs, self.low, self.high)
        return actions.astype(self.dtype)


def observation_dim(space: Any) -> int:
    """The length of a flat ``Box`` observation, or :class:`UnsupportedSpaceError`."""
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        raise UnsupportedSpaceError(
            f"observation space {space} is not supported: policies take a flat Box; wrap the environment "
            "(gymnasium.wrappers.FlattenObservation for Dict/Tuple/Discrete observations)")
    if len(space.shape) != 1:
        raise UnsupportedSpaceError(
            f"observation space {space} has shape {space.shape}: policies take a flat Box (1-D); wrap the "
            "environment with gymnasium.wrappers.FlattenObservation (images need a convolutional torch policy "
            "and the flattening wrapper)")
    return int(space.shape[0])


def action_map(space: Any, *, squash: bool = False) -> ActionMap:
    """How outputs become actions in ``space``, or :class:`UnsupportedSpaceError`."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return ActionMap(discrete=True, act_dim=int(space.n))
    if isinstance(space, spaces.Box):
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(f"action space {space} has shape {space.shape}: only a 1-D Box is supported")
        low, high = np.asarray(space.low, dtype=float), np.asarray(space.high, dtype=float)
        if squash and not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise UnsupportedSpaceError(f"action space {space} is unbounded: squash=True needs finite bounds "
                                        "(use clipping, the default)")
        return ActionMap(discrete=False, act_dim=int(space.shape[0]), low=low, high=high, squash=squash,
                         dtype=space.dtype)
    raise UnsupportedSpaceError(f"action space {space} is not supported: only Discrete and a 1-D Box are "
                                "(MultiDiscrete, MultiBinary, Dict and Tuple actions need a wrapper)")
