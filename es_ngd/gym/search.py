"""The policy-search loop: :func:`policy_search` runs NGDES on a :class:`~es_ngd.gym.problem.GymProblem` to an
environment-step budget, with a CSV log, checkpoints, and the best and final policies saved.

Per generation: the running observation statistics are frozen into the generation's context, the
population is evaluated by any es_ngd evaluator (``evaluate_with_info``: the context goes out, each
candidate's :class:`~es_ngd.gym.problem.EpisodeInfo` comes back), the strategy is told the fitness, and
the candidates' observation statistics are merged into the running ones in candidate order. Every
``eval_every`` generations the mean policy runs ``problem.episodes`` episodes of its own (seeds apart from
training's; their steps are reported as ``eval_env_steps``, outside the budget); the best of those is the
saved "best" policy. At the end the mean policy runs 10 fresh episodes: ``eval_return``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from es_ngd.gym.normalizer import RunningStats, merge_all
from es_ngd.gym.problem import EVALUATION, GenerationContext, GymProblem
from es_ngd.gym.storage import save_policy

#: σ₀ = SIGMA0_SCALE × the policy's input scale ``1/√obs_dim`` (docs/policy_search.md: measured on
#: CartPole-v1 and Pendulum-v1).
SIGMA0_SCALE = 0.5
#: The structure of B unless one is given: one Kronecker factor pair per weight matrix (triangular on the
#: layer's inputs and on its outputs) and a diagonal per bias, for a linear policy (one layer) and a network
#: alike. Measured against ``diag`` and ``up:2`` at their defaults (docs/policy_search.md;
#: benchmarks/results/gym/): fewer steps to 475 on CartPole-v1, the best median on Pendulum-v1 with an MLP
#: (8 seeds) and on HalfCheetah-v5 (3 seeds; 5,280 over 8), and the threshold on every LunarLander seed.
DEFAULT_STRUCTURE = "layers:kron(tril,tril)"
#: Generations between evaluations of the mean policy (for the log, the progress bar and the best policy).
EVAL_EVERY = 5
LOG_FILE, SUMMARY_FILE, CHECKPOINT, STATE = "log.csv", "summary.json", "checkpoint.npz", "search_state"
COLUMNS = ("generation", "env_steps", "elapsed_s", "steps_per_s", "best_return", "mean_return", "center_return",
           "best_center_return", "sigma", "failed", "note")
FINAL_EPISODES = 10
CENTER_TAG = 2  # seed stream of the mean policy's periodic evaluations


def default_sigma0(problem: GymProblem) -> float:
    """σ₀ relative to the policy's input scale (see :data:`SIGMA0_SCALE`)."""
    return SIGMA0_SCALE * problem.policy.input_scale()


def layer_structure(spec: str, problem: GymProblem) -> str:
    """Expand ``"layers:W[,B]"`` into a ``product(...)`` structure over the policy's parameter blocks.

    ``W`` is the structure of every weight matrix (a ``kron(F1,F2)`` gets the matrix's shape, ``F1`` acting on
    its inputs, ``F2`` on its outputs), ``B`` that of every bias (default ``diag``). Any other string is
    returned unchanged.
    """
    if not spec.startswith("layers:"):
        return spec
    from es_ngd.groups import split_top_level

    parts = split_top_level(spec[len("layers:"):])
    if len(parts) not in (1, 2) or not all(parts):
        raise ValueError(f"structure {spec!r}: written 'layers:WEIGHTS' or 'layers:WEIGHTS,BIASES', e.g. "
                         "'layers:kron(tril,tril)' or 'layers:kron(dense,diag),diag'")
    weights, biases = parts[0], parts[1] if len(parts) == 2 else "diag"
    blocks = []
    for block in problem.policy.blocks():
        if block.kind == "weight" and weights.startswith("kron"):
            blocks.append(f"{weights}@{block.shape[0]}x{block.shape[1]}")
        elif block.kind == "weight":
            blocks.append(f"{weights}@{block.size}")
        else:
            blocks.append(f"{biases if block.kind == 'bias' else 'diag'}@{block.size}")
    return "product(" + ",".join(blocks) + ")"


@dataclass
class SearchResult:
    mean: np.ndarray
    best_params: np.ndarray
    best_return: float
    eval_returns: list[float]
    env_steps: int
    eval_env_steps: int
    generations: int
    stats: RunningStats | None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def eval_return(self) -> float:
        return float(np.mean(self.eval_returns))


def make_evaluator(problem: GymProblem, *, workers: int | None = None, vectorized: bool = False,
                   **ray_options: Any) -> Any:
    """Serial, vectorised (one vector environment) or Ray (an environment per actor) evaluation of ``problem``."""
    from es_ngd.evaluators import SerialEvaluator, VectorizedEvaluator

    if workers is not None:
        from es_ngd.evaluators.ray import RayEvaluator

        # env errors are caught per candidate by the problem; rank_last covers a worker that keeps dying
        return RayEvaluator(problem.batch if vectorized else problem, num_workers=workers, vectorized=vectorized,
                            init_hook=problem.make_env, **{"on_error": "rank_last", **ray_options})
    return VectorizedEvaluator(problem.batch) if vectorized else SerialEvaluator(problem)


def policy_search(problem: GymProblem, *, max_env_steps: int, structure: str = DEFAULT_STRUCTURE,
                  popsize: int | None = None, sigma0: float | None = None, seed: int | None = None,
                  workers: int | None = None, vectorized: bool = False,
                  out: str | os.PathLike[str] | None = None, resume: bool = False,
                  eval_every: int = EVAL_EVERY, target_return: float | None = None, checkpoint_every: int = 10,
                  x0: Any = None, on_generation: Callable[[dict[str, Any]], None] | None = None,
                  evaluator: Any = None, **strategy_options: Any) -> SearchResult:
    """Search a policy for ``problem`` until ``max_env_steps`` environment steps (or the strategy stops, or the mean
    policy's periodic return reaches ``target_return``); a generation that starts under the budget runs to its end,
    so ``env_steps`` may pass it by up to one generation's steps. ``seed`` defaults to the problem's. With ``out``,
    writes ``log.csv``, ``checkpoint.npz`` (+ ``search_state.*``), ``policy_best.*``, ``policy_final.*`` and
    ``summary.json`` there; ``resume=True`` continues from its checkpoint. ``strategy_options`` go to NGDES."""
    import es_ngd

    seed = problem.seed if seed is None else int(seed)
    out = None if out is None else Path(out)
    x0 = problem.initial_parameters() if x0 is None else problem.check_parameters(x0)
    sigma0 = default_sigma0(problem) if sigma0 is None else float(sigma0)
    structure = layer_structure(structure, problem)
    options = {"popsize": popsize, **strategy_options} if popsize else dict(strategy_options)
    es = es_ngd.NGDES(x0, sigma0, structure=structure, seed=seed, **options)
    run = _RunState(stats=RunningStats.empty(problem.obs_dim) if problem.normalize else None,
                    best_params=x0.copy())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume and (out / CHECKPOINT).exists():
            es = es_ngd.NGDES.load(out / CHECKPOINT)
            run = _RunState.load(out, problem)
        _Log.start(out / LOG_FILE, keep_until=run.generation)
    owned = evaluator is None
    evaluator = make_evaluator(problem, workers=workers, vectorized=vectorized) if owned else evaluator
    start = time.monotonic() - run.elapsed
    try:
        while run.env_steps < max_env_steps and not es.stop() and not run.reached(target_return):
            row = _generation(es, problem, evaluator, run, eval_every)
            row["elapsed_s"] = time.monotonic() - start
            row["steps_per_s"] = run.env_steps / max(row["elapsed_s"], 1e-9)
            run.elapsed = row["elapsed_s"]
            run.history.append(row)
            if out is not None:
                _Log.append(out / LOG_FILE, row)
                if run.generation % checkpoint_every == 0:
                    _checkpoint(es, run, out)
            if on_generation is not None:
                on_generation(row)
    finally:
        if owned:
            evaluator.close()
    normalizer = None if run.stats is None else run.stats.frozen()
    final = problem.evaluate_policy(es.mean, normalizer, episodes=FINAL_EPISODES, tag=EVALUATION)
    result = SearchResult(mean=np.array(es.mean), best_params=run.best_params, best_return=run.best_center,
                          eval_returns=list(final.returns), env_steps=run.env_steps, eval_env_steps=run.eval_steps,
                          generations=run.generation, stats=run.stats, history=run.history)
    if out is not None:
        _checkpoint(es, run, out)
        _finish(out, problem, result, es, final.error)
    return result


@dataclass
class _RunState:
    stats: RunningStats | None
    best_params: np.ndarray
    generation: int = 0
    env_steps: int = 0
    eval_steps: int = 0
    elapsed: float = 0.0
    best_center: float = -math.inf
    last_center: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)

    def reached(self, target: float | None) -> bool:
        return target is not None and self.last_center >= target

    def save(self, out: Path) -> None:
        arrays = {"best_params": self.best_params, **(self.stats.to_arrays() if self.stats is not None else {})}
        np.savez(out / f"{STATE}.npz", **arrays)
        state = {key: getattr(self, key) for key in ("generation", "env_steps", "eval_steps", "elapsed",
                                                     "best_center", "last_center")}
        (out / f"{STATE}.json").write_text(json.dumps(state) + "\n")

    @classmethod
    def load(cls, out: Path, problem: GymProblem) -> _RunState:
        state = json.loads((out / f"{STATE}.json").read_text())
        with np.load(out / f"{STATE}.npz", allow_pickle=False) as arrays:
            stats = RunningStats.from_arrays(arrays) if problem.normalize else None
            best = problem.check_parameters(np.array(arrays["best_params"]))
        return cls(stats=stats, best_params=best, **state)


def _generation(es: Any, problem: GymProblem, evaluator: Any, run: _RunState, eval_every: int) -> dict[str, Any]:
    context = GenerationContext(run.generation, None if run.stats is None else run.stats.frozen())
    population = es.ask_population()
    fitness, infos = evaluator.evaluate_with_info(population, context)
    errors = [info.error if info is not None else "its evaluation failed (worker lost or timed out)"
              for info in infos if info is None or info.error]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN fitness: reported in the log's "failed" column
        es.tell(population.candidates(), fitness)
    if run.stats is not None:
        run.stats = merge_all(run.stats, [None if info is None else info.stats for info in infos])
    run.env_steps += sum(info.steps for info in infos if info is not None)
    run.generation += 1
    finite = -fitness[np.isfinite(fitness)]
    row: dict[str, Any] = {"generation": run.generation, "env_steps": run.env_steps,
                           "best_return": float(finite.max()) if finite.size else math.nan,
                           "mean_return": float(finite.mean()) if finite.size else math.nan,
                           "center_return": math.nan, "sigma": float(es.sigma), "failed": len(errors),
                           "note": errors[0] if errors else ""}
    if run.generation % eval_every == 0 or run.generation == 1:
        normalizer = None if run.stats is None else run.stats.frozen()
        info = problem.evaluate_policy(es.mean, normalizer, episodes=problem.episodes, tag=CENTER_TAG + run.generation)
        run.eval_steps += info.steps
        if not info.error:
            run.last_center = row["center_return"] = float(np.mean(info.returns))
            if run.last_center > run.best_center:
                run.best_center, run.best_params = run.last_center, np.array(es.mean)
    row["best_center_return"] = run.best_center
    return row


def _checkpoint(es: Any, run: _RunState, out: Path) -> None:
    es.save(out / CHECKPOINT)
    run.save(out)


def _finish(out: Path, problem: GymProblem, result: SearchResult, es: Any, error: str | None) -> None:
    extra = {"structure": es.group.structure}
    save_policy(out / "policy_final", problem, result.mean, result.stats, eval_return=result.eval_return, **extra)
    save_policy(out / "policy_best", problem, result.best_params, result.stats, center_return=result.best_return,
                **extra)
    summary = {"env_id": problem.env_id or problem.describe(), "env_steps": result.env_steps,
               "eval_env_steps": result.eval_env_steps, "generations": result.generations,
               "eval_return": result.eval_return, "eval_returns": result.eval_returns,
               "eval_error": error, "best_center_return": result.best_return, "structure": es.group.structure,
               "popsize": es.popsize, "dim": es.dim, "sigma": float(es.sigma), "seed": es.seed,
               "policy": problem.policy.spec(), "episodes": problem.episodes, "stop": sorted(es.stop())}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=float) + "\n")
    try:
        plot_learning_curve(out)
    except ImportError:
        pass  # matplotlib is optional: the CSV log has everything


class _Log:
    @staticmethod
    def start(path: Path, keep_until: int) -> None:
        """A fresh log, or (resuming) the rows up to the checkpoint's generation: later ones would repeat."""
        rows = []
        if keep_until and path.exists():
            with path.open() as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["generation"]) <= keep_until]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    @staticmethod
    def append(path: Path, row: dict[str, Any]) -> None:
        with path.open("a", newline="") as handle:
            csv.DictWriter(handle, COLUMNS).writerow({k: row.get(k, "") for k in COLUMNS})


def read_log(out: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The columns of ``out/log.csv`` as float arrays (``note`` left out)."""
    with (Path(out) / LOG_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) if row[key] not in ("", None) else math.nan for row in rows])
            for key in COLUMNS if key != "note"}


def plot_learning_curve(out: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """``out/learning_curve.png``: the generation's best and mean return and the mean policy's, against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(out)
    summary = json.loads((Path(out) / SUMMARY_FILE).read_text()) if (Path(out) / SUMMARY_FILE).exists() else {}
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(log["env_steps"], log["best_return"], lw=0.8, alpha=0.6, label="generation best")
    ax.plot(log["env_steps"], log["mean_return"], lw=0.8, alpha=0.6, label="generation mean")
    center = np.isfinite(log["center_return"])
    ax.plot(log["env_steps"][center], log["center_return"][center], "o-", ms=3, label="mean policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(f"{summary.get('env_id', '')} {summary.get('structure', '')}".strip()[:80], fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(output) if output is not None else Path(out) / "learning_curve.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
