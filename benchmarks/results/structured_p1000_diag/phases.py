"""Evaluations to reach f - f_opt <= 1e2, 1, 1e-2, 1e-8 on arrow-rosenbrock p = 1000 (interpolated on the logged history)."""
import json, sys, collections
levels = [1e4, 1e2, 1, 1e-2, 1e-5, 1e-8]
rows = collections.defaultdict(list)
for fn in sys.argv[1:]:
    for r in json.load(open(fn))["runs"]:
        if r["spec"]["function"] != "arrow-rosenbrock" or r["spec"]["dim"] != 1000:
            continue
        h = r["history"]
        hit = []
        for lv in levels:
            e = next((ev for ev, f in h if f <= lv), None)
            hit.append(e)
        rows[r["spec"]["solver"] + (":" + str(r["spec"].get("structure")) if r["spec"].get("structure") else "")].append((r["spec"]["seed"], hit))
for solver, rs in rows.items():
    print(solver)
    for seed, hit in sorted(rs):
        print("  seed", seed, " ".join(f"{lv:g}:{(h or 0)/1e3:7.0f}k" for lv, h in zip(levels, hit)))
