"""Screening of the rank-one term's c₁: evaluations to 1e-8 on the built-in functions, per (function, variant).

Variants: "dense" keeps CMA-ES's c₁ = 2/((p + 1.3)² + μ_eff) for every group (es_ngd 84ca122);
"dofA" sets A·2/(2P + μ_eff), P = the group's ``num_parameters()`` (A = 1 when omitted); "xF" multiplies
CMA-ES's c₁ by F. Written against commit 84ca122, whose RankOnePath has no per-group c₁ (on later code
"dense" is no longer the default). Usage (see README.md):

    PYTHONPATH=<checkout> python screen_c1.py FUNCS DIM SEEDS STRUCTURE VARIANTS_JSON [JOBS]
"""

import json
import sys
from multiprocessing import Pool

import es_ngd.shaping as shaping
import es_ngd.strategy as st
from es_ngd.bench.runner import RunSpec, run_one

ORIGINAL_INIT = st.NGDES.__init__


def mu_eff(popsize: int) -> float:
    return 1.0 / float((shaping.xnes_weights(popsize) ** 2).sum())


def run(args: tuple) -> tuple:
    function, dim, seed, structure, variant = args

    def patched_init(self, *a, **k) -> None:
        ORIGINAL_INIT(self, *a, **k)
        if self.rank_one is None or variant == "dense":
            return
        if variant.startswith("x"):
            self.rank_one.c_1 *= float(variant[1:])
        elif variant.startswith("dof"):
            scale = float(variant[3:] or 1)
            self.rank_one.c_1 = scale * 2.0 / (2.0 * self.group.num_parameters() + mu_eff(self.popsize))
        else:
            raise ValueError(f"unknown variant {variant!r}")

    st.NGDES.__init__ = patched_init
    spec = RunSpec(solver=f"ngd:{structure}", suite="builtin", function=function, dim=dim, instance=seed, seed=seed,
                   budget=10000 * dim, target=1e-8, sigma0=2.0)
    record = run_one(spec)
    st.NGDES.__init__ = ORIGINAL_INIT
    return function, variant, seed, record.evaluations_to_target, record.evaluations


def main() -> None:
    functions, dim, seeds, structure = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    variants = json.loads(sys.argv[5])
    jobs = [(f, dim, s, structure, v) for f in functions for v in variants for s in range(1, seeds + 1)]
    with Pool(int(sys.argv[6]) if len(sys.argv) > 6 else 1) as pool:
        results = pool.map(run, jobs)
    for function in functions:
        for variant in variants:
            runs = [r for r in results if r[0] == function and r[1] == variant]
            hits = [r[3] for r in runs if r[3] is not None]
            ert = sum(r[3] if r[3] is not None else r[4] for r in runs) / len(hits) if hits else float("inf")
            print(f"{function:18s} {variant:8s} ERT {ert:9.0f}  {len(hits)}/{len(runs)}  {[r[3] for r in runs]}",
                  flush=True)


if __name__ == "__main__":
    main()
