"""Ask/tell quick start: drive the search loop yourself (pycma's shape).

    python examples/ask_tell_quickstart.py
"""

import numpy as np

import es_ngd


def rotated_ellipsoid(x: np.ndarray, rotation: np.ndarray) -> float:
    y = rotation @ x
    return float(np.sum(1e4 ** (np.arange(len(y)) / (len(y) - 1)) * y**2))


def main() -> es_ngd.Result:
    p = 10
    rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((p, p)))[0]
    # "tril": a Cholesky-type precision factor, enough to learn the rotated ellipsoid's correlations
    es = es_ngd.NGDES(x0=np.ones(p), sigma0=0.5, structure="tril", seed=1, ftarget=1e-10)
    while not es.stop():
        candidates = es.ask()  # (popsize, p) array
        es.tell(candidates, [rotated_ellipsoid(x, rotation) for x in candidates])
        if es.state.iterations % 200 == 0:
            print(es)
    result = es.result
    print(f"stopped by {result.stop}: f = {result.fbest:.3g} after {result.evaluations} evaluations")
    return result


if __name__ == "__main__":
    main()
