"""Robustness of σ's trace-term rate η_σ: IPOP on 10-D Rastrigin, a noisy sphere and popsize 100 (p = 40).

Variants: lr_sigma=None (the code's default) against explicit values. Seeds 0..N-1. Prints one line per case.
usage: python robust_lrsigma.py SEEDS STRUCTURE=LR_SIGMA_LIST  e.g. 6 dense=none,0.21152 up:2=none,0.21152
"""
import sys
from multiprocessing import Pool

import numpy as np

import es_ngd


def rastrigin(X):
    X = np.asarray(X)
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


def job(a):
    kind, structure, lr_sigma, seed = a
    p = 10 if kind == "rastrigin" else 40
    if lr_sigma == "old":  # es_ngd 0.2's default: η_σ = η_B of the group
        lr_sigma = es_ngd.NGDES(np.zeros(p), 1.0, structure=structure).rates.factor
    opts = {} if lr_sigma is None else {"lr_sigma": lr_sigma}
    if kind == "rastrigin":
        r = es_ngd.optimize(rastrigin, lambda rng: rng.uniform(-5, 5, 10), 2.5, seed=seed, structure=structure,
                            vectorized=True, ftarget=1e-8, maxfevals=200_000, restarts=9, **opts)
    else:
        rng = np.random.default_rng(seed + 100)
        noisy = kind == "noisy"

        def f(X):
            v = (np.asarray(X) ** 2).sum(1)
            return v * (1 + 0.01 * rng.standard_normal(len(X))) if noisy else v
        x0 = np.random.default_rng(seed).uniform(-4, 4, 40)
        r = es_ngd.optimize(f, x0, 2.0, seed=seed, structure=structure, vectorized=True, ftarget=1e-8,
                            maxfevals=400_000, popsize=None if noisy else 100, **opts)
    return kind, structure, a[2], (r.evaluations if r.fbest < 1e-8 else None)


if __name__ == "__main__":
    seeds = int(sys.argv[1])
    jobs = []
    for spec in sys.argv[2:]:
        structure, values = spec.split("=")
        for v in values.split(","):
            lr = None if v == "none" else v if v == "old" else float(v)
            for kind in ("rastrigin", "noisy", "pop100"):
                jobs += [(kind, structure, lr, s) for s in range(seeds)]
    with Pool(1) as pool:
        out = pool.map(job, jobs)
    keys = sorted({o[:3] for o in out}, key=str)
    for k in keys:
        ev = [o[3] for o in out if o[:3] == k]
        ok = [e for e in ev if e is not None]
        print(k, f"{len(ok)}/{len(ev)}", "median", int(np.median(ok)) if ok else None)
