"""``es-ngd gym ENV_ID`` (policy search to an env-step budget) and ``es-ngd gym play DIR`` (run a saved policy).

``es-ngd gym CartPole-v1 --budget 50000 --out runs/cartpole`` writes ``log.csv``, ``learning_curve.png``,
``policy_best.*``/``policy_final.*`` (npz + JSON), ``checkpoint.npz`` and ``summary.json`` into ``--out``;
``--resume`` continues a run from its checkpoint. ``es-ngd gym play runs/cartpole --episodes 5 --video
cartpole.gif`` prints the returns of the saved final policy and records the first episode when the
environment renders ``rgb_array`` frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from es_ngd.cli import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from es_ngd.gym.search import DEFAULT_STRUCTURE  # numpy only: gymnasium is imported when a run starts

    parser.add_argument("env_id", metavar="ENV_ID", help="a Gymnasium environment id, or 'play' to run a saved policy")
    parser.add_argument("directory", nargs="?", metavar="DIR", help="(with 'play') the --out directory of a run")
    search = parser.add_argument_group("policy search")
    search.add_argument("--policy", choices=("linear", "mlp"), default="linear")
    search.add_argument("--hidden", default="64,64", help="hidden layer sizes of the mlp policy (default 64,64)")
    search.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    search.add_argument("--structure", default=DEFAULT_STRUCTURE,
                        help="structure of B: per layer, e.g. 'layers:kron(tril,tril)' (the default), or one group for "
                             "all parameters, e.g. diag or up:2")
    search.add_argument("--popsize", type=int, default=None, help="population size (default: the strategy's)")
    search.add_argument("--sigma0", type=float, default=None,
                        help="initial step size (default: 0.5/sqrt(obs_dim), the policy's input scale)")
    search.add_argument("--episodes", type=int, default=1, help="episodes per evaluation (default 1)")
    search.add_argument("--max-episode-steps", type=int, default=None, help="cap on one episode's steps")
    search.add_argument("--budget", type=float, default=1e5, help="environment steps to spend (default 1e5)")
    search.add_argument("--target", type=float, default=None, help="stop when the mean policy's return reaches it")
    search.add_argument("--workers", type=int, default=None, help="Ray workers (default: serial in this process)")
    search.add_argument("--vectorized", action="store_true",
                        help="all candidates through one gymnasium.vector environment")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--no-normalize", action="store_true", help="raw observations (no running normaliser)")
    search.add_argument("--no-common-random-numbers", action="store_true",
                        help="different episode seeds per candidate (default: shared within a generation)")
    search.add_argument("--squash", action="store_true", help="continuous actions through tanh instead of clipping")
    search.add_argument("--eval-every", type=int, default=5, help="generations between mean-policy evaluations")
    search.add_argument("--out", default=None, help="directory for the log, plots, policies and checkpoint")
    search.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    play = parser.add_argument_group("play")
    play.add_argument("--which", choices=("final", "best"), default="final", help="which saved policy to play")
    play.add_argument("--play-episodes", type=int, default=5, help="episodes to play (default 5)")
    play.add_argument("--video", default=None, help="record the first episode to this GIF file (rgb_array envs)")


def run(args: argparse.Namespace) -> int:
    if args.env_id == "play":
        if not args.directory:
            raise UsageError("es-ngd gym play DIR: give the --out directory of a run")
        return play(Path(args.directory), which=args.which, episodes=args.play_episodes, video=args.video,
                    seed=args.seed)
    if args.directory:
        raise UsageError(f"unexpected argument {args.directory!r} (only 'es-ngd gym play DIR' takes a directory)")
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR (the run to continue)")
    return search(args)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise UsageError(f"--hidden takes comma-separated sizes, e.g. 64,64; got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden takes positive sizes, got {text!r}")
    return sizes


def search(args: argparse.Namespace) -> int:
    from es_ngd.gym.problem import GymProblem
    from es_ngd.gym.search import policy_search
    from es_ngd.gym.spaces import UnsupportedSpaceError

    try:
        problem = GymProblem(args.env_id, policy=args.policy, hidden=_hidden(args.hidden), activation=args.activation,
                             episodes=args.episodes, max_steps=args.max_episode_steps, seed=args.seed,
                             normalize=not args.no_normalize, squash=args.squash,
                             common_random_numbers=not args.no_common_random_numbers)
    except (ValueError, ImportError, UnsupportedSpaceError) as err:
        print(f"es-ngd gym: {err}", file=sys.stderr)
        return 1
    progress = None if args.quiet else _Progress(args.budget)
    try:
        result = policy_search(problem, max_env_steps=int(args.budget), structure=args.structure,
                               popsize=args.popsize, sigma0=args.sigma0, seed=args.seed, workers=args.workers,
                               vectorized=args.vectorized, out=args.out, resume=args.resume,
                               eval_every=args.eval_every, target_return=args.target,
                               on_generation=None if progress is None else progress.update)
    except ValueError as err:  # a malformed structure, an option the strategy refuses
        print(f"es-ngd gym: {err}", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.close()
    print(f"{problem.describe()}: {result.generations} generations, {result.env_steps} env steps; mean policy "
          f"return over {len(result.eval_returns)} fresh episodes: {result.eval_return:.1f}"
          + (f"; results in {args.out}" if args.out else ""))
    return 0


class _Progress:
    """A rich progress bar over the env-step budget, or one plain line per generation without rich."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        try:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:
            self.bar = None
            return
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=False)
        self.task = self.bar.add_task("starting", total=budget)
        self.bar.start()

    def update(self, row: dict[str, Any]) -> None:
        center = row["best_center_return"]
        text = (f"gen {row['generation']:5d}  steps {row['env_steps']:>9,d}  best {row['best_return']:9.1f}  "
                f"mean policy {center if math.isfinite(center) else math.nan:9.1f}  {row['steps_per_s']:8,.0f} steps/s"
                + (f"  [{row['failed']} failed]" if row["failed"] else ""))
        if self.bar is None:
            print(text, flush=True)
        else:
            self.bar.update(self.task, completed=min(row["env_steps"], self.budget), description=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def play(directory: Path, *, which: str = "final", episodes: int = 5, video: str | None = None, seed: int = 0) -> int:
    from es_ngd.gym.storage import load_policy

    path = directory / f"policy_{which}"
    if not path.with_suffix(".json").exists():
        print(f"es-ngd gym play: {path.with_suffix('.json')} does not exist (is {directory} a run's --out?)",
              file=sys.stderr)
        return 1
    saved = load_policy(path)
    problem = saved.problem(seed=seed)
    returns = play_policy(saved, problem, episodes=episodes, video=video)
    print(json.dumps({"env_id": saved.meta["env_id"], "policy": which, "returns": returns,
                      "mean_return": sum(returns) / len(returns)}))
    return 0


def play_policy(saved: Any, problem: Any, *, episodes: int, video: str | None = None) -> list[float]:
    """Returns of ``episodes`` episodes (seeds apart from training's); the first one recorded to ``video``."""
    from es_ngd.gym.problem import EVALUATION

    returns = []
    if video is not None:
        # the frames are drawn off screen; SDL's dummy video driver keeps pygame (classic control, Box2D) from
        # looking for a display, which prints "XDG_RUNTIME_DIR is invalid" on a headless machine
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        env = problem.make_env(render_mode="rgb_array")
        frames: list[Any] = []
        info = problem.evaluate_policy(saved.params, saved.normalizer(), episodes=1, tag=EVALUATION + 100,
                                       render=lambda e: frames.append(e.render()), env=env)
        env.close()
        returns += list(info.returns)
        episodes -= 1
        _write_gif(video, [f for f in frames if f is not None])
    if episodes > 0:
        info = problem.evaluate_policy(saved.params, saved.normalizer(), episodes=episodes, tag=EVALUATION + 101)
        returns += list(info.returns)
    return [float(r) for r in returns]


def _write_gif(path: str, frames: list[Any]) -> None:
    if not frames:
        print("es-ngd gym play: the environment rendered no rgb_array frames; no video written", file=sys.stderr)
        return
    from PIL import Image  # Pillow comes with matplotlib

    images = [Image.fromarray(frame) for frame in frames[::2]]  # every other frame: half the size, still smooth
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)
    print(f"es-ngd gym play: {len(images)} frames written to {path}", file=sys.stderr)
