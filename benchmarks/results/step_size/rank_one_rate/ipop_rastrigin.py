"""IPOP on 10-D Rastrigin with diag at the current default: the README's restart example, seeds 0-5.

    python benchmarks/results/step_size/rank_one_rate/ipop_rastrigin.py \
        > benchmarks/results/step_size/rank_one_rate/ipop_rastrigin.txt
"""

import numpy as np

import es_ngd


def rastrigin(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(X)
    return 10.0 * X.shape[1] + (X**2 - 10.0 * np.cos(2 * np.pi * X)).sum(1)


def main() -> None:
    evaluations = []
    for seed in range(6):
        result = es_ngd.optimize(rastrigin, lambda rng: rng.uniform(-5, 5, 10), 2.5, structure="diag", restarts=9,
                                 bipop=False, maxfevals=2e5, ftarget=1e-8, vectorized=True, seed=seed)
        solved = result.fbest < 1e-8
        evaluations.append(result.evaluations if solved else None)
        print(f"seed {seed}: fbest {result.fbest:.2e}, evaluations {result.evaluations}, solved {solved}", flush=True)
    hits = [e for e in evaluations if e is not None]
    print(f"solved {len(hits)} of {len(evaluations)} within 200k; median evaluations of the solved "
          f"{np.median(hits):.0f}" if hits else "solved none")


if __name__ == "__main__":
    main()
