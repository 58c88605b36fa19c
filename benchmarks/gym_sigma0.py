"""The measurement behind policy search's default σ₀: final return against σ₀'s scale, per policy kind.

σ₀ = scale × the policy's input scale (``es_ngd.gym.search.default_sigma0``: 1/√obs_dim). Each run is
``policy_search`` at its defaults except σ₀; its score is the final mean policy's return over 10 fresh
episodes. Tasks and budgets are those of ``gym_comparison.py``'s, shortened to what a sweep can afford:

    python benchmarks/gym_sigma0.py --tasks pendulum lunar --scales 0.25 0.5 1 2 --seeds 1 2 3
    python benchmarks/gym_sigma0.py --tasks halfcheetah --scales 0.25 0.5 1 2 --seeds 1 --budget 1000000

Writes ``benchmarks/results/gym/sigma0_<task>.json`` (runs accumulate across invocations; a rerun of a
(scale, seed) replaces that run) and prints the table of every such file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from gym_comparison import RESULTS, TASKS

#: budgets of the sweep (env steps), shorter than the comparison's
SWEEP_BUDGETS = {"cartpole": 20_000, "pendulum": 300_000, "lunar": 300_000, "halfcheetah": 1_000_000}


def run(task_name: str, scale: float, seed: int, budget: int, structure: str) -> dict:
    from es_ngd.gym.problem import GymProblem
    from es_ngd.gym.search import policy_search

    task = TASKS[task_name]
    problem = GymProblem(task.env_id, policy=task.policy, hidden=task.hidden or (64, 64), seed=seed)
    sigma0 = scale * problem.policy.input_scale()
    start = time.perf_counter()
    result = policy_search(problem, max_env_steps=budget, structure=structure, sigma0=sigma0)
    return {"scale": scale, "sigma0": sigma0, "seed": seed, "budget": budget, "structure": structure,
            "final_return": result.eval_return, "env_steps": result.env_steps,
            "final_sigma": result.history[-1]["sigma"], "seconds": time.perf_counter() - start}


def report() -> None:
    print("| task | policy | σ₀ scale | σ₀ | seeds | final return (median) | per seed |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("sigma0_*.json")):
        data = json.loads(path.read_text())
        for scale in sorted({r["scale"] for r in data["runs"]}):
            runs = sorted((r for r in data["runs"] if r["scale"] == scale), key=lambda r: r["seed"])
            returns = [r["final_return"] for r in runs]
            print(f"| {data['task']} | {data['policy']} | {scale:g} | {runs[0]['sigma0']:.3g} | {len(runs)} | "
                  f"{statistics.median(returns):.1f} | {' / '.join(f'{v:.0f}' for v in returns)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["pendulum"])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=None, help="override the sweep's env-step budget")
    parser.add_argument("--structure", default="diag")
    parser.add_argument("--report", action="store_true", help="print the table of the saved results and exit")
    args = parser.parse_args()
    if not args.report:
        for name in args.tasks:
            path = RESULTS / f"sigma0_{name}.json"
            runs = json.loads(path.read_text())["runs"] if path.exists() else []
            for scale in args.scales:
                for seed in args.seeds:
                    result = run(name, scale, seed, args.budget or SWEEP_BUDGETS[name], args.structure)
                    runs = [r for r in runs if (r["scale"], r["seed"]) != (scale, seed)] + [result]
                    print(json.dumps(result), flush=True)
                    path.write_text(json.dumps({"task": name, "env_id": TASKS[name].env_id,
                                                "policy": TASKS[name].policy, "hidden": TASKS[name].hidden,
                                                "runs": runs}, indent=1) + "\n")
    report()


if __name__ == "__main__":
    main()
