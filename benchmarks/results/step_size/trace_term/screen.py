"""Screening of step-size variants: evaluations to 1e-8 on the built-in functions, per (function, solver).

Run against the code of commit be8ba1d (the first CSA, without the trace term), whose CSA it patches:
{"trace": k} adds k·½η_σ tr(G)/p to log σ after CSA, {"csa": "dampX"} multiplies d_σ by X,
{"path": "cma"} feeds the path CMA's positive weights. On later code the "trace" variant would count
the term twice. Usage (see README.md): PYTHONPATH=<checkout of be8ba1d> python screen.py FUNCS DIMS SEEDS SOLVERS_JSON
"""

import inspect
import json
import math
import sys
from multiprocessing import Pool

import numpy as np

import es_ngd.shaping as shaping
import es_ngd.step_size as ss
import es_ngd.strategy as st
from es_ngd.bench.runner import RunSpec, run_one

ORIG_INIT = ss.CSA.__init__
ORIG_NS = st._noise_statistics
src = inspect.getsource(st._noise_statistics)
src = src.replace("ranked = xnes_utilities(fitness)", "ranked = _positive(fitness)")


def _positive(fitness):
    order = np.argsort(fitness, kind="stable")
    w = shaping.xnes_weights(len(fitness))
    r = np.empty(len(fitness))
    r[order] = w
    return r


ns = dict(st.__dict__)
ns["_positive"] = _positive
exec(src, ns)
CMA_NS = ns["_noise_statistics"]

ORIG_UPDATE = ss.CSA.update


def patch(variant):
    ss.CSA.__init__ = ORIG_INIT
    ss.CSA.update = ORIG_UPDATE
    if "trace" in variant:
        k = float(variant["trace"])

        def update(self, state, sigma, generation, k=k):
            sigma, state = ORIG_UPDATE(self, state, sigma, generation)
            return sigma * math.exp(0.5 * k * generation.sigma_rate * generation.trace_part), state

        ss.CSA.update = update
    st._noise_statistics = ORIG_NS
    if variant.get("path") == "cma":
        st._noise_statistics = CMA_NS
    if "csa" in variant:
        kind = variant["csa"]
        orig = ORIG_INIT

        def init(self, dim, popsize, _orig=orig, kind=kind):
            _orig(self, dim, popsize)
            mu_eff = 1.0 / float((shaping.xnes_weights(popsize) ** 2).sum())
            if (
                kind == "pycma"
            ):  # c_s from pycma 3.x/4.x: (mueff+2)/(N+mueff+3), damp 1+2max(0,sqrt((mueff-1)/(N+1))-1)+cs
                self.c_sigma = (mu_eff + 2.0) / (dim + mu_eff + 3.0)
                self.damping = 1.0 + 2.0 * max(0.0, math.sqrt((mu_eff - 1.0) / (dim + 1.0)) - 1.0) + self.c_sigma
            elif kind.startswith("damp"):
                self.damping *= float(kind[4:])
            self.path_weight = math.sqrt(self.c_sigma * (2.0 - self.c_sigma))

        ss.CSA.__init__ = init


def job(args):
    fn, dim, seed, solver, variant = args
    patch(variant)
    spec = RunSpec(
        suite="builtin",
        solver=solver,
        function=fn,
        dim=dim,
        instance=seed,
        seed=seed,
        budget=10000 * dim,
        target=1e-8,
        sigma0=2.0,
    )
    r = run_one(spec)
    return (fn, dim, solver, json.dumps(variant), r.evaluations_to_target)


if __name__ == "__main__":
    fns = sys.argv[1].split(",")
    dims = [int(d) for d in sys.argv[2].split(",")]
    seeds = range(1, int(sys.argv[3]) + 1)
    solvers = json.loads(sys.argv[4])  # list of [solver, variant]
    jobs = [(f, d, s, sv, v) for f in fns for d in dims for sv, v in solvers for s in seeds]
    with Pool(2) as pool:
        out = pool.map(job, jobs, chunksize=1)
    table = {}
    for fn, dim, solver, variant, e in out:
        table.setdefault((fn, dim), {}).setdefault(solver + variant, []).append(e)
    for (fn, dim), row in table.items():
        print(f"{fn} p={dim}")
        for k, v in row.items():
            ok = [x for x in v if x is not None]
            ert = (sum(ok) + (len(v) - len(ok)) * 10000 * dim) / max(len(ok), 1)
            print(f"   {k:60s} ert {ert:9.0f}  median {np.median(ok) if ok else float('nan'):9.0f}  {len(ok)}/{len(v)}")
