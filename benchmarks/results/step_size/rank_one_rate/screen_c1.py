"""Screening: the rank-one term's c₁ scaled by the group's degrees of freedom.
variant "dense": CMA-ES's c₁ = 2/((p+1.3)²+μ_eff) (current); "dof": 2/(2·P + μ_eff)·a with P = num_parameters;
"xF": c₁ × F. Usage: python screen_c1.py FUNCS DIM SEEDS STRUCTURE VARIANTS_JSON"""
import json, sys
from multiprocessing import Pool
import numpy as np
import es_ngd.evolution_path as ep
import es_ngd.strategy as st
from es_ngd.bench.runner import RunSpec, run_one

ORIG = ep.RankOnePath.__init__
def run(args):
    func, dim, seed, structure, variant = args
    def patched(self, d, popsize):
        ORIG(self, d, popsize)
    mu_eff_of = lambda n: 1.0 / float((ep.xnes_weights(n) ** 2).sum())
    ORIG_SI = st.NGDES.__init__
    def si(self, *a, **k):
        ORIG_SI(self, *a, **k)
        if self.rank_one is not None and variant != "dense":
            P = self.group.num_parameters()
            if variant.startswith("x"):
                self.rank_one.c_1 *= float(variant[1:])
            elif variant.startswith("dof"):
                a_ = float(variant[3:] or 1)
                self.rank_one.c_1 = a_ * 2.0 / (2.0 * P + mu_eff_of(self.popsize))
            if variant.startswith("dofc"):
                pass
    st.NGDES.__init__ = si
    spec = RunSpec(solver=f"ngd:{structure}", suite="builtin", function=func, dim=dim, instance=seed, seed=seed,
                   budget=10000 * dim, target=1e-8, sigma0=2.0)
    r = run_one(spec)
    st.NGDES.__init__ = ORIG_SI
    return func, variant, seed, r.evaluations_to_target, r.evaluations

if __name__ == "__main__":
    funcs, dim, seeds, structure, variants = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
    jobs = [(f, dim, s, structure, v) for f in funcs for v in variants for s in range(1, seeds + 1)]
    with Pool(int(sys.argv[6]) if len(sys.argv) > 6 else 1) as pool:
        res = pool.map(run, jobs)
    for f in funcs:
        for v in variants:
            rs = [r for r in res if r[0] == f and r[1] == v]
            succ = [r[3] for r in rs if r[3] is not None]
            ert = (sum(r[3] if r[3] is not None else r[4] for r in rs) / len(succ)) if succ else float("inf")
            print(f"{f:18s} {v:8s} ERT {ert:9.0f}  {len(succ)}/{len(rs)}  {[r[3] for r in rs]}", flush=True)
