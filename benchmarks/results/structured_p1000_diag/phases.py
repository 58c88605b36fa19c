"""Where a run's evaluations go: for each f − f_opt level, the evaluations at the first logged point at or below it.

The benchmark logs 20 points a decade of evaluations (12 % apart), so these are coarse (no interpolation).
Usage: python phases.py RESULTS.json [...] > arrow_rosenbrock_phases.txt
"""
import collections
import json
import sys

LEVELS = [1e4, 1e2, 1, 1e-2, 1e-5, 1e-8]


def first_hits(history: list[list[float]]) -> list[float | None]:
    return [next((evals for evals, gap in history if gap <= level), None) for level in LEVELS]


def main(paths: list[str]) -> None:
    rows = collections.defaultdict(list)
    for path in paths:
        with open(path) as file:
            runs = json.load(file)["runs"]
        for run in runs:
            spec = run["spec"]
            if spec["function"] != "arrow-rosenbrock" or spec["dim"] != 1000:
                continue
            solver = spec["solver"] + (f":{spec['structure']}" if spec.get("structure") else "")
            rows[solver].append((spec["seed"], first_hits(run["history"])))
    print("python phases.py " + " ".join(paths))
    for solver, seeds in rows.items():
        print(solver)
        for seed, hits in sorted(seeds):
            cells = (f"{level:g}: " + ("  never" if hit is None else f"{hit / 1e3:6.0f}k")
                     for level, hit in zip(LEVELS, hits, strict=True))
            print("  seed", seed, " ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
