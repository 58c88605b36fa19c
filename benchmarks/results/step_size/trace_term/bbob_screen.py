"""bbob f7/f8/f13 at p=10: successes and ERT for damping factors (patched class attribute) and CMA-ES."""

import sys
from multiprocessing import Pool

import numpy as np

import es_ngd.step_size as ss
from es_ngd.bench.runner import RunSpec, run_one


def job(a):
    fn, inst, solver, damp = a
    ss.CSA.damping_factor = damp
    spec = RunSpec(
        suite="bbob", solver=solver, function=fn, dim=10, instance=inst, seed=1, budget=100000, target=1e-8, sigma0=2.0
    )
    r = run_one(spec)
    return fn, solver, damp, r.evaluations_to_target, r.evaluations


if __name__ == "__main__":
    fns = sys.argv[1].split(",")
    insts = range(1, int(sys.argv[2]) + 1)
    jobs = [
        (f, i, s, d)
        for f in fns
        for s, d in [("cma", 0.7), ("ngd:dense", 0.7), ("ngd:dense", 1.0), ("ngd:dense", 0.85)]
        for i in insts
    ]
    with Pool(2) as pool:
        out = pool.map(job, jobs, chunksize=1)
    t = {}
    for f, s, d, e, n in out:
        t.setdefault((f, s, d), []).append((e, n))
    for k, v in t.items():
        ok = [e for e, n in v if e is not None]
        ert = sum(e if e is not None else n for e, n in v) / max(len(ok), 1)
        print(k, f"{len(ok)}/{len(v)} ert {ert:.0f} median {np.median(ok) if ok else float('nan'):.0f}")
