# Measurement behind the block groups' default learning rate (es_ngd/groups/_block.py).
# Usage: python benchmarks/block_learning_rates.py   (grid: p, K, rate multiplier of SNES's rate;
# two problems: separable ellipsoid with the low-curvature coordinates in the dense block, and a
# diagonal + rank-K Hessian; two seeds; budget 4000·p; inf = target 1e-8 not reached).
import json
import math

import numpy as np

import es_ngd
from es_ngd.groups.base import snes_learning_rate


def elli(x):
    p = len(x)
    return float((1e6 ** (np.arange(p) / (p - 1)) * x**2).sum())


def make_lowrank(p, k, seed=0):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((p, k)))[0]
    d = 10 ** rng.uniform(0, 2, p)
    H = np.diag(d) + U @ np.diag(10 ** rng.uniform(2, 4, k)) @ U.T
    return lambda x: float(0.5 * x @ H @ x)


out = []
for p in [10, 50, 200]:
    for k in [1, 2, 5]:
        for mult in [1.0, 0.5, 0.25, 0.125]:
            lr = mult * snes_learning_rate(p)
            for name, f in [("elli", elli), ("lowrank", make_lowrank(p, k))]:
                evs = []
                for seed in [1, 2]:
                    r = es_ngd.optimize(
                        f,
                        np.ones(p) * 0.5,
                        0.5,
                        structure=f"up:{k}",
                        seed=seed,
                        ftarget=1e-8,
                        maxfevals=4000 * p,
                        lr_factor=lr,
                    )
                    evs.append(r.evaluations if r.fbest < 1e-8 else math.inf)
                row = dict(p=p, k=k, mult=mult, lr=lr, problem=name, evals=evs)
                print(row, flush=True)
                out.append(row)
json.dump(out, open("benchmarks/results/block_learning_rates.json", "w"))
