"""The torch backend on a GPU: same trajectories as numpy, and time per ask + tell.

Run it on a machine with CUDA (the test suite covers torch on the CPU only):

    python benchmarks/torch_cuda_check.py --out benchmarks/results/torch_cuda

1. For every structure, 40 generations on the sphere with the same seed on numpy and on
   ``backend="torch", device="cuda", noise="host"`` (float64): the largest difference of the means and
   of σ. Host noise is drawn on the host and copied to the device, so the candidates are the same numbers
   (CUDA's default, ``noise="device"``, draws other numbers on the device).
2. Time per ask + tell (sphere evaluated on the device) for diag, up:2 and dense, numpy against
   CUDA in float64 and float32 with CUDA's default noise, at the dimensions given
   (``benchmarks/gpu_generation.py`` compares host and device noise).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _results import command_line, write_results

import es_ngd

STRUCTURES = ["dense", "diag", "tril", "triu", "up:2", "low:2", "hier:2,2", "hier-up:2,2", "toeplitz",
              "sparse:4,4", "kron(dense,diag)"]


def trajectory(structure: str, backend: str, device: str | None, generations: int = 40) -> tuple[np.ndarray, float]:
    p = 12
    shape = {"shape": (3, 4)} if structure.startswith("kron") else {}
    es = es_ngd.NGDES(np.linspace(-1, 1, p), 0.7, structure=structure, seed=3, backend=backend, device=device,
                      noise="host", **shape)
    for _ in range(generations):
        x = es.ask()
        es.tell(x, (x**2).sum(1))
    mean = es.mean.detach().cpu().numpy() if hasattr(es.mean, "detach") else np.asarray(es.mean)
    return mean, es.sigma


def time_per_iteration(structure: str, p: int, backend: str, device: str | None, dtype: str,
                       seconds: float = 2.0) -> float:
    es = es_ngd.NGDES(np.ones(p), 1.0, structure=structure, seed=1, backend=backend, device=device, dtype=dtype,
                      tolx=0, tolfun=0, max_condition=np.inf)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up: kernels, allocator
        x = es.ask()
        es.tell(x, (x**2).sum(1))
    sync()
    iters, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = es.ask()
        es.tell(x, (x**2).sum(1))
        iters += 1
    sync()
    return 1e3 * (time.perf_counter() - start) / iters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.txt")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 1
    command = command_line(argv)
    machine = (f"{platform.platform()}, {torch.cuda.get_device_name()}, python {platform.python_version()}, "
               f"numpy {np.__version__}, torch {torch.__version__}, es_ngd {es_ngd.__version__}")
    lines = [f"command: {command}", f"machine: {machine}", "",
             "same seed, 40 generations, p = 12: numpy vs torch on cuda (float64)",
             f"{'structure':>18} {'max |Δ mean|':>14} {'|Δ σ| / σ':>11}"]
    report: dict = {"command": command, "machine": machine, "trajectories": [], "timings": []}
    worst = 0.0
    for structure in STRUCTURES:
        mean_np, sigma_np = trajectory(structure, "numpy", None)
        mean_gpu, sigma_gpu = trajectory(structure, "torch", "cuda")
        d_mean = float(np.abs(mean_np - mean_gpu).max())
        d_sigma = abs(sigma_np - sigma_gpu) / sigma_np
        worst = max(worst, d_mean, d_sigma)
        report["trajectories"].append({"structure": structure, "max_abs_mean_diff": d_mean, "rel_sigma_diff": d_sigma})
        lines.append(f"{structure:>18} {d_mean:>14.2e} {d_sigma:>11.2e}")
    lines += ["", "ms per ask + tell (sphere; default population): numpy on the CPU vs torch on cuda",
              f"{'p':>7} {'structure':>9} {'numpy f64':>10} {'cuda f64':>9} {'cuda f32':>9}"]
    for p in args.dims:
        for structure in ("diag", "up:2", "dense"):
            if structure == "dense" and p > 1000:
                continue
            ms = {"numpy_f64": time_per_iteration(structure, p, "numpy", None, "float64"),
                  "cuda_f64": time_per_iteration(structure, p, "torch", "cuda", "float64"),
                  "cuda_f32": time_per_iteration(structure, p, "torch", "cuda", "float32")}
            report["timings"].append({"p": p, "structure": structure, "ms_per_iter": ms})
            lines.append(f"{p:>7} {structure:>9} {ms['numpy_f64']:>10.3f} {ms['cuda_f64']:>9.3f} "
                         f"{ms['cuda_f32']:>9.3f}")
    print("\n".join(lines))
    if args.out:
        write_results(args.out, lines, report)
    return 0 if worst < 1e-10 else 2


if __name__ == "__main__":
    sys.exit(main())
