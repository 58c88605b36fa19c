import json
import sys
from multiprocessing import Pool

import numpy as np
from screen import patch


def job(a):
    variant, seed = a
    patch(variant)
    from es_ngd.gym.problem import GymProblem
    from es_ngd.gym.search import policy_search

    problem = GymProblem("Pendulum-v1", policy="mlp", hidden=(8,), seed=seed)
    before = problem.evaluate_policy(problem.initial_parameters(), None, episodes=10)
    r = policy_search(problem, max_env_steps=60_000, popsize=8, sigma0=2 / np.sqrt(3))
    return json.dumps(variant), seed, float(np.mean(before.returns)), r.eval_return


if __name__ == "__main__":
    variants = json.loads(sys.argv[1])
    seeds = range(int(sys.argv[2]))
    with Pool(2) as pool:
        out = pool.map(job, [(v, s) for v in variants for s in seeds], chunksize=1)
    t = {}
    for v, _s, b, e in out:
        t.setdefault(v, []).append(e - b)
    for v, x in t.items():
        print(f"{v:35s} improvement median {np.median(x):7.0f}  " + " ".join(f"{y:6.0f}" for y in x))
