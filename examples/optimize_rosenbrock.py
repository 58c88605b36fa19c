"""One call: minimise the 10-D Rosenbrock function with a dense (xNES-type) search distribution.

    python examples/optimize_rosenbrock.py
"""

import numpy as np

import es_ngd


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def main() -> es_ngd.Result:
    result = es_ngd.optimize(rosenbrock, x0=np.zeros(10), sigma0=0.5, structure="dense", seed=1,
                             ftarget=1e-10, maxfevals=50_000)
    print(f"f = {result.fbest:.3g} at x = {np.round(result.xbest, 6)}")
    print(f"{result.evaluations} evaluations, {result.iterations} generations, stopped by {result.stop}")
    return result


if __name__ == "__main__":
    main()
