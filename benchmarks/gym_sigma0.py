"""The measurement behind policy search's default σ₀ and population: final return against σ₀'s scale (and,
with ``--popsizes``, the population size), per policy kind.

σ₀ = scale × the policy's input scale (``es_ngd.gym.search.default_sigma0``: 1/√obs_dim). Each run is
``policy_search`` at its defaults except σ₀; its score is the final mean policy's return over 10 fresh
episodes. Tasks and budgets are those of ``gym_comparison.py``'s, shortened to what a sweep can afford:

    python benchmarks/gym_sigma0.py --tasks pendulum lunar --scales 0.25 0.5 1 2 --seeds 1 2 3
    python benchmarks/gym_sigma0.py --tasks halfcheetah --scales 0.5 1 --popsizes 0 50 --seeds 1 2 --budget 1500000

A popsize of 0 (or none given) is the strategy's default, ``4 + ⌊3 ln p⌋``.

Writes ``benchmarks/results/gym/sigma0_<task>.json`` (runs accumulate across invocations; a rerun of a
(scale, popsize, seed) replaces that run) and prints the table of every such file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

from gym_comparison import RESULTS, TASKS

#: budgets of the sweep (env steps), shorter than the comparison's
SWEEP_BUDGETS = {"cartpole": 20_000, "pendulum": 300_000, "lunar": 300_000, "halfcheetah": 1_000_000}


def run(task_name: str, scale: float, seed: int, budget: int, structure: str, popsize: int | None = None) -> dict:
    from es_ngd.bench.solvers import NGD_PREFIX, parse_ngd_solver
    from es_ngd.gym.problem import GymProblem
    from es_ngd.gym.search import policy_search

    plain, options = parse_ngd_solver(NGD_PREFIX + structure)  # "diag@mirrored=true": NGDES options too
    task = TASKS[task_name]
    problem = GymProblem(task.env_id, policy=task.policy, hidden=task.hidden or (64, 64), seed=seed)
    sigma0 = scale * problem.policy.input_scale()
    start = time.perf_counter()
    result = policy_search(problem, max_env_steps=budget, structure=plain, sigma0=sigma0, popsize=popsize, **options)
    return {"scale": scale, "sigma0": sigma0, "popsize": popsize, "seed": seed, "budget": budget,
            "structure": structure, "generations": result.generations,
            "final_return": result.eval_return, "env_steps": result.env_steps,
            "final_sigma": result.history[-1]["sigma"], "seconds": time.perf_counter() - start}


def report() -> None:
    print("| task | policy, structure | budget | σ₀ scale | σ₀ | popsize | seeds | final return (median) | per seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("sigma0_*.json")):
        data = json.loads(path.read_text())
        for config in sorted({_config(r) for r in data["runs"]}, key=lambda c: (c[0], c[1], c[2], c[3] or 0)):
            runs = sorted((r for r in data["runs"] if _config(r) == config), key=lambda r: r["seed"])
            returns = [r["final_return"] for r in runs]
            structure, budget, scale, popsize = config
            print(f"| {data['task']} | {data['policy']} {structure} | {budget:.3g} | {scale:g} | "
                  f"{runs[0]['sigma0']:.3g} | {popsize or 'default'} | {len(runs)} | "
                  f"{statistics.median(returns):.1f} | {' / '.join(f'{v:.0f}' for v in returns)} |")


def _config(run: dict) -> tuple:
    """(structure, budget, σ₀ scale, popsize) of a run; runs saved before ``--popsizes`` used the default population."""
    return run["structure"], run["budget"], run["scale"], run.get("popsize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["pendulum"])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--popsizes", type=int, nargs="+", default=[0], help="0: the strategy's default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=None, help="override the sweep's env-step budget")
    parser.add_argument("--structure", default="diag", help="an es_ngd structure, with NGDES options as "
                        "@OPTION=VALUE (e.g. diag@mirrored=true); default diag, the structure the sweeps in "
                        "docs/policy_search.md ran with")
    parser.add_argument("--report", action="store_true", help="print the table of the saved results and exit")
    args = parser.parse_args()
    if not args.report:
        for name in args.tasks:
            path = RESULTS / f"sigma0_{name}.json"
            for scale, popsize, seed in itertools.product(args.scales, args.popsizes, args.seeds):
                result = run(name, scale, seed, args.budget or SWEEP_BUDGETS[name], args.structure, popsize or None)
                # re-read just before writing, so that sweeps running side by side keep each other's runs
                runs = json.loads(path.read_text())["runs"] if path.exists() else []
                runs = [r for r in runs if (_config(r), r["seed"]) != (_config(result), seed)] + [result]
                print(json.dumps(result), flush=True)
                path.write_text(json.dumps({"task": name, "env_id": TASKS[name].env_id,
                                            "policy": TASKS[name].policy, "hidden": TASKS[name].hidden,
                                            "runs": runs}, indent=1) + "\n")
    report()


if __name__ == "__main__":
    main()
