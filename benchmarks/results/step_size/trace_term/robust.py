import json
import sys
from multiprocessing import Pool

import numpy as np
from screen import patch

import es_ngd


def rastrigin(X):
    X = np.asarray(X)
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


def uniform_start(rng):
    return rng.uniform(-5, 5, 10)


def job(a):
    kind, structure, variant, seed = a
    patch(variant)
    if kind == "rastrigin":
        r = es_ngd.optimize(
            rastrigin,
            uniform_start,
            2.5,
            seed=seed,
            structure=structure,
            vectorized=True,
            ftarget=1e-8,
            maxfevals=200_000,
            restarts=9,
        )
        return (kind, structure, json.dumps(variant), r.evaluations if r.fbest < 1e-8 else None)
    if kind == "noisy":
        rng = np.random.default_rng(seed + 100)
        def f(X):
            return (np.asarray(X) ** 2).sum(1) * (1 + 0.01 * rng.standard_normal(len(X)))
        x0 = np.random.default_rng(seed).uniform(-4, 4, 40)
        r = es_ngd.optimize(
            f, x0, 2.0, seed=seed, structure=structure, vectorized=True, ftarget=1e-8, maxfevals=400_000
        )
        return (kind, structure, json.dumps(variant), r.evaluations if r.fbest < 1e-8 else None)
    if kind == "pop100":
        def f(X):
            return (np.asarray(X) ** 2).sum(1)
        x0 = np.random.default_rng(seed).uniform(-4, 4, 40)
        r = es_ngd.optimize(
            f, x0, 2.0, seed=seed, structure=structure, vectorized=True, ftarget=1e-8, maxfevals=400_000, popsize=100
        )
        return (kind, structure, json.dumps(variant), r.evaluations if r.fbest < 1e-8 else None)


if __name__ == "__main__":
    variants = json.loads(sys.argv[1])
    seeds = int(sys.argv[2])
    jobs = [
        (k, s, v, seed)
        for k, ss in [("rastrigin", ["diag"]), ("noisy", ["dense", "diag"]), ("pop100", ["dense", "diag"])]
        for s in ss
        for v in variants
        for seed in range(seeds)
    ]
    with Pool(2) as pool:
        out = pool.map(job, jobs, chunksize=1)
    t = {}
    for k, s, v, e in out:
        t.setdefault((k, s, v), []).append(e)
    for key, v in t.items():
        ok = [x for x in v if x is not None]
        print(key, f"{len(ok)}/{len(v)} median {np.median(ok) if ok else float('nan'):.0f}")
