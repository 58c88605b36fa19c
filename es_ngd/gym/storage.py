"""Saved policies: ``NAME.npz`` (arrays: parameters and observation statistics) plus ``NAME.json`` (what
they are: environment id, policy spec, normaliser settings, the return it reached). No pickle anywhere:
``np.load(allow_pickle=False)`` and JSON, so a policy file can be shared and opened safely."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from es_ngd.gym.normalizer import RunningStats

FORMAT = "es_ngd.gym.policy/1"


@dataclass
class SavedPolicy:
    params: np.ndarray
    stats: RunningStats | None  # None when the policy takes raw observations
    meta: dict[str, Any]

    def problem(self, **overrides: Any) -> Any:
        """A :class:`~es_ngd.gym.problem.GymProblem` that runs this policy (its environment id must be saved)."""
        from es_ngd.gym.problem import GymProblem

        if not self.meta.get("env_id"):
            raise ValueError("this policy was trained on an environment factory, not an id: build the "
                             "GymProblem yourself with the same factory and policy spec")
        options = {"policy": self.meta["policy"], "max_steps": self.meta.get("max_steps"),
                   "normalize": self.stats is not None, "squash": self.meta.get("squash", False),
                   "env_kwargs": self.meta.get("env_kwargs") or {}, **overrides}
        problem = GymProblem(self.meta["env_id"], **options)
        problem.check_parameters(self.params)
        return problem

    def normalizer(self) -> Any:
        return None if self.stats is None else self.stats.frozen()


def save_policy(path: str | os.PathLike[str], problem: Any, params: np.ndarray, stats: RunningStats | None,
                **extra: Any) -> Path:
    """Write ``path.npz`` and ``path.json`` (``path`` without suffix); returns the JSON path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"params": np.asarray(params, dtype=float)}
    if stats is not None:
        arrays.update(stats.to_arrays())
    np.savez(path.with_suffix(".npz"), **arrays)
    meta = {"format": FORMAT, "env_id": problem.env_id, "policy": problem.policy.spec(),
            "obs_dim": problem.obs_dim, "act_dim": problem.actions.act_dim, "num_parameters": problem.num_parameters,
            "normalize": stats is not None, "squash": problem.squash, "max_steps": problem.max_steps,
            "env_kwargs": problem.env_kwargs, **extra}
    json_path = path.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return json_path


def load_policy(path: str | os.PathLike[str]) -> SavedPolicy:
    """Read a policy written by :func:`save_policy` (``path`` with or without a suffix)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".json", ".npz") else path
    meta = json.loads(base.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{base.with_suffix('.json')} is not an es_ngd policy file (format {meta.get('format')!r})")
    with np.load(base.with_suffix(".npz"), allow_pickle=False) as arrays:
        params = np.array(arrays["params"], dtype=float)
        stats = RunningStats.from_arrays(arrays) if meta.get("normalize") else None
    if params.shape != (meta["num_parameters"],):
        raise ValueError(f"{base.with_suffix('.npz')} holds {params.size} parameters, but its JSON says "
                         f"{meta['num_parameters']}")
    return SavedPolicy(params, stats, meta)
