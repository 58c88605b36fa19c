"""The sizes, cost models and machine probes of ``gpu_generation.py`` (see its docstring for the bytes
model and how bandwidth is measured): what a row costs, what the machine is, how fast it copies."""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import es_ngd

#: bytes of memory per element of the population (n·p values) that a generation holds at its peak, by
#: structure: x and z, plus the structure's temporaries (toeplitz: zero-padded FFTs of length ≥ 2p,
#: complex spectra); a rough over-estimate, used only to skip rows that cannot fit
POPULATION_COPIES = {"diag": 3, "up": 4, "toeplitz": 12, "kron": 5, "dense": 4}


# -- sizes and models -------------------------------------------------------------------------------
def kron_shape(p: int) -> tuple[int, int]:
    """``(r, c)`` with ``r·c = p``, r the largest divisor of p not above √p."""
    r = math.isqrt(p)
    while p % r:
        r -= 1
    return r, p // r


def family(structure: str) -> str:
    return structure.split(":")[0].split("(")[0]


def parameters(structure: str, p: int) -> int:
    """Number of the factor's parameters P (the bytes model's 2·P·s)."""
    kind = family(structure)
    if kind in ("up", "low"):
        return (int(structure.split(":")[1]) + 1) * p
    if kind == "kron":
        r, c = kron_shape(p)
        return r * r + c * c
    if kind == "dense":
        return p * p
    return p  # diag, toeplitz


def work(structure: str, p: int, n: int) -> float:
    """Arithmetic per generation, up to a constant: only ratios between sizes of one structure are used."""
    kind = family(structure)
    if kind == "toeplitz":
        return n * p * math.log2(2 * p)
    if kind == "kron":
        return n * p * sum(kron_shape(p))
    if kind == "dense":
        return n * p * p + p**3
    return n * p * (parameters(structure, p) / p)


def memory_gib(structure: str, p: int, n: int, itemsize: int) -> float:
    """Estimated peak memory of one generation (see POPULATION_COPIES)."""
    copies = POPULATION_COPIES.get(family(structure), 6)  # structures not listed: a guess on the safe side
    factor = parameters(structure, p) * (6 if family(structure) == "dense" else 3)
    return (copies * n * p + factor) * itemsize / 2**30


def model_bytes(structure: str, p: int, n: int, itemsize: int) -> int:
    """The bytes model of the module docstring: 5·n·p·s + 2·P·s."""
    return 5 * n * p * itemsize + 2 * parameters(structure, p) * itemsize


def fmt_pn(x: int) -> str:
    e = round(math.log10(x))
    return f"1e{e}" if 10**e == x else f"{x:.2g}"


# -- machine and bandwidth --------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"node": platform.node(), "platform": platform.platform(), "cpu": cpu_model(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version(),
                            "numpy": np.__version__, "torch": torch.__version__, "es_ngd": es_ngd.__version__,
                            "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                            "float32_matmul_precision": torch.get_float32_matmul_precision(),
                            "threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                   "OPENBLAS_NUM_THREADS") if k in os.environ}}
    if device == "cuda":
        info["cuda"] = torch.version.cuda
    try:
        import evotorch

        info["evotorch"] = evotorch.__version__
    except Exception as error:  # evotorch installed without its dependencies
        info["evotorch"] = f"unavailable: {type(error).__name__}: {error}"
    return info


def measure_bandwidth(device: str, repeats: int = 5) -> dict[str, Any]:
    """Copy bandwidth in GB/s (2·bytes/time: every byte is read once and written once), best of ``repeats``."""
    sizes = [4 * 2**30, 2**30] if device == "cuda" else [256 * 2**20]
    for nbytes in sizes:
        try:
            src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
            dst = torch.empty_like(src)
            dst.copy_(src)  # warm-up
            seconds = []
            for _ in range(repeats):
                if device == "cuda":
                    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    dst.copy_(src)
                    stop.record()
                    stop.synchronize()
                    seconds.append(start.elapsed_time(stop) / 1e3)
                else:
                    t0 = time.perf_counter()
                    dst.copy_(src)
                    seconds.append(time.perf_counter() - t0)
            del src, dst
            how = "CUDA events" if device == "cuda" else "perf_counter"
            return {"gbps": 2 * nbytes / min(seconds) / 1e9,
                    "gbps_median": 2 * nbytes / statistics.median(seconds) / 1e9,
                    "method": f"{'device-to-device' if device == 'cuda' else 'host'} copy of {nbytes / 2**30:g} GiB "
                              f"(float32), {how}, best of {repeats}"}
        except torch.cuda.OutOfMemoryError:
            gc.collect()
            torch.cuda.empty_cache()
    raise RuntimeError("no room on the device for the bandwidth measurement; pass --peak-gbps")


def device_noise_check(device: str) -> dict[str, Any]:
    """Device noise on CUDA: values bit-identical to torch-CPU's for one key, and the generator's own time."""
    if device != "cuda":
        return {"skip": "it needs CUDA, this run is --device cpu"}
    from es_ngd.device_noise import device_normals

    result: dict[str, Any] = {}
    try:
        rows, dim = 2000, 1000
        on_cuda = device_normals(7, 3, range(rows), dim, dtype=torch.float32, device="cuda").cpu()
        on_cpu = device_normals(7, 3, range(rows), dim, dtype=torch.float32, device="cpu")
        result.update(rows=rows, dim=dim, values=on_cuda.numel(),
                      identical=int((on_cuda.view(torch.int32) == on_cpu.view(torch.int32)).sum()),
                      max_abs_diff=float((on_cuda - on_cpu).abs().max()))
    except Exception as error:  # a measurement on the side: never the end of the run
        result["compare_error"] = f"{type(error).__name__}: {error}"
    try:
        rows, dim, seconds = 100_000, 1000, []
        for repeat in range(4):  # the first is a warm-up
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = device_normals(7, repeat, range(rows), dim, dtype=torch.float32, device="cuda")
            stop.record()
            stop.synchronize()
            seconds.append(start.elapsed_time(stop) / 1e3)
            del out
        values = rows * dim
        result.update(timed_values=values, ms=1e3 * min(seconds[1:]), gbps=4 * values / min(seconds[1:]) / 1e9)
    except Exception as error:
        result["timing_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:240]}"
    gc.collect()
    torch.cuda.empty_cache()
    return result


def noise_check_lines(check: dict[str, Any], peak_gbps: float) -> list[str]:
    if "skip" in check:
        return [f"device noise CUDA vs CPU: skipped ({check['skip']})"]
    compare = (f"{check['identical']} of {check['values']} values bit-identical "
               f"({check['rows']} rows × {check['dim']}, float32), max |diff| = {check['max_abs_diff']:.3g}"
               if "identical" in check else f"failed ({check['compare_error']})")
    timing = (f"{check['ms']:.2f} ms for {fmt_pn(check['timed_values'])} float32 values = {check['gbps']:.0f} GB/s "
              f"written ({100 * check['gbps'] / peak_gbps:.0f}% of the copy bandwidth; CUDA events, best of 3)"
              if "ms" in check else f"failed ({check['timing_error']})")
    return [f"device noise CUDA vs CPU: {compare}", f"device_normals alone: {timing}"]
