"""A Gymnasium task as an objective: :class:`GymProblem` (fitness = −mean episode return, minimised).

``problem(x, context=ctx)`` runs ``episodes`` episodes of the policy with parameters ``x`` and returns an
:class:`~es_ngd.evaluators.outcome.Outcome` whose ``info`` is an :class:`EpisodeInfo`: the environment
steps taken (budgets count them), the returns, and the statistics of the observations seen (merged by
the search into the running normaliser). ``ctx`` is the generation's :class:`GenerationContext`: its
number (which seeds the episodes) and the frozen normaliser every candidate of the generation uses.
The problem is built for es_ngd's evaluators:

* serial: ``SerialEvaluator(problem)`` (the problem builds its environment once, lazily);
* vectorised: ``VectorizedEvaluator(problem.batch)``: all candidates' episodes through one
  ``gymnasium.vector.SyncVectorEnv``, one batched policy forward per step;
* Ray: ``RayEvaluator(problem, init_hook=problem.make_env)``: one environment per actor, passed as ``env``.

All three give the same values bit for bit. Episode seeds come from ``(seed, generation, x)``: the run's
seed, the generation, and (unless ``common_random_numbers``, the default, gives every candidate of a
generation the same episode seeds) a hash of the candidate's bytes, so no evaluator needs to know a
candidate's index. An environment that raises, or returns a non-finite reward, fails that candidate only:
its fitness is NaN (the strategy ranks it last) and ``info.error`` says what happened.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_ngd.evaluators.outcome import Outcome
from es_ngd.gym.normalizer import Normalizer, RunningStats
from es_ngd.gym.policies import Policy, make_policy
from es_ngd.gym.spaces import action_map, observation_dim

#: Tags that separate the seed streams of training episodes and of the final evaluation.
TRAINING, EVALUATION = 0, 1


@dataclass(frozen=True)
class GenerationContext:
    """What every candidate of one generation shares: its number and the frozen normaliser (None: raw)."""

    generation: int
    normalizer: Normalizer | None = None


@dataclass(frozen=True)
class EpisodeInfo:
    """What one candidate's evaluation reports next to its fitness."""

    steps: int
    returns: tuple[float, ...]
    stats: RunningStats | None
    error: str | None = None


class EnvironmentError_(RuntimeError):
    """The environment raised or returned a non-finite reward during an episode (caught per candidate)."""


def _digest(x: np.ndarray) -> int:
    """A 64-bit hash of a candidate's float64 bytes (the same on every process that holds the same row)."""
    return int.from_bytes(hashlib.blake2b(np.ascontiguousarray(x, dtype=np.float64).tobytes(),
                                          digest_size=8).digest(), "little")


class GymProblem:
    """Policy search on a Gymnasium environment.

    Args:
        env: an environment id (``"CartPole-v1"``) or a zero-argument factory returning an environment.
        policy: ``"linear"``, ``"mlp"`` (numpy; ``hidden`` and ``activation`` apply), a spec dict, or a
            ``torch.nn.Module`` mapping ``(1, obs_dim)`` to ``(1, act_dim)``.
        episodes: episodes per evaluation (fitness is minus their mean return).
        max_steps: cap on the steps of one episode (beyond the environment's own time limit).
        seed: the run's seed; every episode's seed derives from it.
        normalize: normalise observations with the running statistics (frozen per generation).
        common_random_numbers: the same episode seeds for every candidate of a generation.
        squash: continuous actions through ``tanh`` onto the bounds instead of clipping.
        env_kwargs: keyword arguments of ``gymnasium.make``.
    """

    def __init__(self, env: str | Callable[[], Any], *, policy: Any = "linear", hidden: Sequence[int] = (64, 64),
                 activation: str = "tanh", episodes: int = 1, max_steps: int | None = None, seed: int = 0,
                 normalize: bool = True, common_random_numbers: bool = True, squash: bool = False,
                 env_kwargs: dict[str, Any] | None = None) -> None:
        if isinstance(episodes, bool) or int(episodes) != episodes or episodes < 1:
            raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
        if max_steps is not None and (int(max_steps) != max_steps or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
        if not (isinstance(env, str) or callable(env)):
            raise TypeError(f"env must be an environment id or a factory, got {type(env).__name__}")
        self.env_id = env if isinstance(env, str) else None
        self._factory = None if isinstance(env, str) else env
        self.env_kwargs = dict(env_kwargs or {})
        self.episodes, self.max_steps = int(episodes), None if max_steps is None else int(max_steps)
        self.seed, self.normalize = int(seed), bool(normalize)
        self.common_random_numbers, self.squash = bool(common_random_numbers), bool(squash)
        environment = self.make_env()
        self.obs_dim = observation_dim(environment.observation_space)
        self.actions = action_map(environment.action_space, squash=squash)
        self.policy: Policy = make_policy(policy, self.obs_dim, self.actions.act_dim, hidden=hidden,
                                          activation=activation)
        self.num_parameters = self.policy.num_parameters
        self._env: Any = environment  # this process's environment (serial evaluation); never pickled
        self._vector: tuple[int, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_env"], state["_vector"] = None, None  # each Ray actor builds its own (init_hook)
        return state

    # -- environments -------------------------------------------------------------------------------
    def make_env(self, **kwargs: Any) -> Any:
        """A fresh environment (the ``init_hook`` of a Ray evaluator); ``kwargs`` go to ``gymnasium.make``."""
        import gymnasium

        if self._factory is not None:
            return self._factory()
        try:
            return gymnasium.make(self.env_id, **{**self.env_kwargs, **kwargs})
        except (gymnasium.error.NameNotFound, gymnasium.error.NamespaceNotFound,
                gymnasium.error.VersionNotFound) as err:
            raise ValueError(f"unknown environment id {self.env_id!r}: {err}") from None
        except gymnasium.error.DependencyNotInstalled as err:
            raise ImportError(f"environment {self.env_id!r} needs a package that is not installed: {err}") from None

    def describe(self) -> str:
        return self.env_id or getattr(self._factory, "__name__", "environment factory")

    # -- parameters and seeds -----------------------------------------------------------------------
    def initial_parameters(self) -> np.ndarray:
        """The policy's initial parameters (seeded by the run's seed)."""
        return self.policy.initial_parameters(np.random.default_rng([self.seed, 7]))

    def check_parameters(self, x: Any) -> np.ndarray:
        x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=float)
        if x.shape[-1:] != (self.num_parameters,):
            raise ValueError(f"policy parameters of shape {x.shape} do not fit the {self.policy.kind} policy of "
                             f"{self.describe()}, which has {self.num_parameters} parameters")
        return x

    def episode_seeds(self, generation: int, x: np.ndarray | None = None, *, tag: int = TRAINING,
                      count: int | None = None) -> list[int]:
        """Seeds of the episodes of candidate ``x`` in ``generation`` (``x`` is ignored with common random numbers)."""
        key = [self.seed, tag, int(generation)]
        if x is not None and not self.common_random_numbers:
            key.append(_digest(x))
        words = np.random.SeedSequence(key).generate_state(count or self.episodes, dtype=np.uint32)
        return [int(w) for w in words]

    # -- evaluation -----------------------------------------------------------------------------------
    def __call__(self, x: Any, env: Any = None, *, context: GenerationContext | None = None) -> Outcome:
        """Fitness (−mean return) of the policy ``x`` and its :class:`EpisodeInfo`."""
        x = self.check_parameters(x)
        context = context or GenerationContext(0)
        if env is None:
            env = self._env if self._env is not None else self.make_env()
            self._env = env
        seeds = self.episode_seeds(context.generation, x)
        info = self.run_episodes(env, x, seeds, context.normalizer)
        fitness = math.nan if info.error else -float(np.mean(info.returns))
        return Outcome(fitness, info)

    def run_episodes(self, env: Any, x: np.ndarray, seeds: Sequence[int], normalizer: Normalizer | None,
                     render: Callable[[Any], None] | None = None) -> EpisodeInfo:
        """Episodes of policy ``x`` in ``env``, one per seed; ``render(env)`` is called after every step."""
        params = x.reshape(1, -1)
        returns: list[float] = []
        observed: list[np.ndarray] = []
        steps = t = 0
        try:
            for episode, seed in enumerate(seeds):
                obs, _ = env.reset(seed=seed)
                total, t = 0.0, 0
                while True:
                    o = np.asarray(obs, dtype=float).reshape(1, -1)
                    observed.append(o)
                    action = self.actions(self.policy.forward(params, normalizer(o) if normalizer else o))[0]
                    obs, reward, terminated, truncated, _ = env.step(action)
                    t += 1
                    if render is not None:
                        render(env)
                    if not math.isfinite(reward):
                        raise EnvironmentError_(f"the environment returned reward {reward} at step {t} of episode "
                                                f"{episode}")
                    total += float(reward)
                    if terminated or truncated or (self.max_steps is not None and t >= self.max_steps):
                        break
                steps, t = steps + t, 0
                returns.append(total)
        except Exception as exc:  # the environment, not the search, failed: this candidate only
            steps += t
            stats = RunningStats.of(np.concatenate(observed)) if observed else None
            return EpisodeInfo(steps, tuple(returns), stats, f"{type(exc).__name__}: {exc}")
        return EpisodeInfo(steps, tuple(returns), RunningStats.of(np.concatenate(observed)))

    def evaluate_policy(self, x: Any, normalizer: Normalizer | None, *, episodes: int = 10,
                        tag: int = EVALUATION, render: Callable[[Any], None] | None = None,
                        env: Any = None) -> EpisodeInfo:
        """``episodes`` fresh episodes of policy ``x`` (seeds from the run's seed and ``tag``, never training's)."""
        x = self.check_parameters(x)
        seeds = self.episode_seeds(0, tag=tag, count=episodes)
        return self.run_episodes(env if env is not None else self.make_env(), x, seeds, normalizer, render)

    # -- vectorised evaluation ----------------------------------------------------------------------
    def _vector_env(self, size: int) -> Any:
        import gymnasium

        if self._vector is None or self._vector[0] != size:
            if self._vector is not None:
                self._vector[1].close()
            self._vector = (size, gymnasium.vector.SyncVectorEnv([self.make_env] * size))
        return self._vector[1]

    def batch(self, X: Any, env: Any = None, *, context: GenerationContext | None = None) -> Outcome:
        """All candidates' episodes at once through one vector environment (``VectorizedEvaluator(problem.batch)``).

        Equal to calling the problem on each row, bit for bit. A generation in which the vector environment
        raises is evaluated again row by row, so that only the candidates whose episodes fail are failed.
        """
        X = self.check_parameters(X)
        context = context or GenerationContext(0)
        try:
            infos = self._batch_episodes(X, context)
        except Exception:
            self._vector = None
            outcomes = [self(x, context=context) for x in X]
            return Outcome(np.array([o.fitness for o in outcomes]), [o.info for o in outcomes])
        fitness = np.array([math.nan if info.error else -float(np.mean(info.returns)) for info in infos])
        return Outcome(fitness, infos)

    def _batch_episodes(self, X: np.ndarray, context: GenerationContext) -> list[EpisodeInfo]:
        k, episodes = len(X), self.episodes
        size = k * episodes  # sub-environment j·episodes + e runs episode e of candidate j
        venv = self._vector_env(size)
        seeds = [s for x in X for s in self.episode_seeds(context.generation, x)]
        obs, _ = venv.reset(seed=seeds)
        params = np.repeat(X, episodes, axis=0)
        active = np.ones(size, dtype=bool)
        totals, lengths = np.zeros(size), np.zeros(size, dtype=np.int64)
        observed: list[list[np.ndarray]] = [[] for _ in range(size)]
        errors: list[str | None] = [None] * size
        norm = context.normalizer
        while active.any():
            o = np.asarray(obs, dtype=float).reshape(size, -1)
            for i in np.flatnonzero(active):
                observed[i].append(o[i])
            actions = self.actions(self.policy.forward(params, norm(o) if norm else o))
            obs, rewards, terminated, truncated, _ = venv.step(actions)
            for i in np.flatnonzero(active):  # the same additions, in the same order, as the serial episode loop
                lengths[i] += 1
                if not math.isfinite(rewards[i]):
                    errors[i] = (f"EnvironmentError_: the environment returned reward {rewards[i]} at step "
                                 f"{lengths[i]} of episode {i % episodes}")
                    active[i] = False
                    continue
                totals[i] += float(rewards[i])
                if terminated[i] or truncated[i] or (self.max_steps is not None and lengths[i] >= self.max_steps):
                    active[i] = False
        infos = []
        for j in range(k):
            envs = range(j * episodes, (j + 1) * episodes)
            rows = [row for i in envs for row in observed[i]]
            error = next((errors[i] for i in envs if errors[i]), None)
            infos.append(EpisodeInfo(int(lengths[list(envs)].sum()), tuple(float(totals[i]) for i in envs),
                                     RunningStats.of(np.array(rows)), error))
        return infos

    def close(self) -> None:
        for env in (self._env, None if self._vector is None else self._vector[1]):
            if env is not None:
                env.close()
        self._env, self._vector = None, None
