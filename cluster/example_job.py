"""An es_ngd run that spreads its evaluations over a Ray cluster (or this machine).

    ray job submit --working-dir . -- python cluster/example_job.py --workers 64   # on a cluster
    python cluster/example_job.py --workers 4                                      # locally

Under ``ray job submit`` the script runs on the head node, where RAY_ADDRESS is set, so
``RayEvaluator`` joins the cluster; run directly, it starts a local Ray on this machine's CPUs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import es_ngd
from es_ngd.evaluators.ray import RayEvaluator


def rastrigin(x: np.ndarray) -> float:
    """Stands in for an expensive simulation: 50 ms per call."""
    time.sleep(0.05)
    return float(10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="Ray actors (default: the cluster's CPUs)")
    parser.add_argument("--num-cpus", type=float, default=None, help="CPUs reserved per actor")
    parser.add_argument("--address", default=None, help='"auto", "ray://head:10001", or none (see above)')
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--maxiter", type=int, default=30)
    args = parser.parse_args()

    # timeout and on_error keep one bad simulation from stopping or stalling a long run
    with RayEvaluator(rastrigin, num_workers=args.workers, num_cpus=args.num_cpus, address=args.address,
                      timeout=10.0, on_error="rank_last") as evaluator:
        start = time.perf_counter()
        result = es_ngd.optimize(rastrigin, np.full(args.dim, 3.0), 2.0, structure="diag", popsize=args.popsize,
                                 seed=1, maxiter=args.maxiter, evaluator=evaluator)
        elapsed = time.perf_counter() - start
        print(f"{evaluator.num_workers} workers: f = {result.fbest:.4g} after {result.evaluations} evaluations "
              f"in {elapsed:.1f} s ({result.evaluations / elapsed:.0f} evaluations/s); {evaluator.stats}")


if __name__ == "__main__":
    main()
