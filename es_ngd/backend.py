"""Array backends: the few operations the group maths needs that numpy and torch spell differently.

Group code is written once against a :class:`Backend`. Everything both libraries spell the same way
(``@``, ``.T``, ``xp.tril``, ``xp.exp``, ``xp.einsum``, ``xp.linalg.inv`` …) goes through
``backend.xp``; the rest (array creation with an explicit dtype/device, triangular solves, singular
values, random normals from an explicit key) lives here. Nothing in this module touches global RNG
state, and nothing copies between host and device unless the method's name says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = Any  # a numpy.ndarray or a torch.Tensor, depending on the backend


#: triangular systems up to this size go to numpy's LAPACK solve rather than scipy's trsm
#: (benchmarks/results/triangular_solve.txt)
SMALL_TRIANGULAR = 64


#: where the random normals come from: numpy's generator on the host, or a counter-based one on the
#: torch device (:mod:`es_ngd.device_noise`)
NOISE_KINDS = ("host", "device")

#: rows drawn from one keyed stream: amortises the generator's construction (about 10 µs) while a
#: worker that needs a few rows still regenerates at most this many
ROWS_PER_STREAM = 16


def _stream(seed: int, ask_id: int, block: int) -> np.random.Generator:
    # SFC64: the fastest of numpy's generators for normals here (about 35 % faster than PCG64)
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, ask_id, block])))


def noise_rows(seed: int, ask_id: int, rows: Sequence[int], dim: int, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normal rows ``rows`` of the noise of ask number ``ask_id`` (written into ``out`` if given).

    Row ``r`` is row ``r % ROWS_PER_STREAM`` of the generator keyed ``(seed, ask_id, r // ROWS_PER_STREAM)``,
    so any process (a Ray worker, a resumed run) regenerates any subset of a population bit for bit
    without drawing the rest of it.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if out is None:
        out = np.empty((rows.size, dim))
    elif out.shape != (rows.size, dim) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {(rows.size, dim)}, "
                         f"got {out.dtype} {out.shape}")
    if rows.size == 0:
        return out
    first = int(rows[0])
    if (first % ROWS_PER_STREAM == 0 and rows.size <= ROWS_PER_STREAM
            and np.array_equal(rows, np.arange(first, first + rows.size))):
        # the leading rows of one stream, in order (ask's row blocks): none of the bookkeeping below
        _stream(seed, ask_id, first // ROWS_PER_STREAM).standard_normal(out=out)
        return out
    blocks = rows // ROWS_PER_STREAM
    for block in range(int(blocks.min()), int(blocks.max()) + 1):
        wanted = np.flatnonzero(blocks == block)
        if not wanted.size:
            continue
        offsets = rows[wanted] - block * ROWS_PER_STREAM
        stream = _stream(seed, ask_id, block)
        first, count = int(wanted[0]), int(wanted.size)
        if offsets[0] == 0 and (offsets == np.arange(count)).all() and (wanted == first + offsets).all():
            stream.standard_normal(out=out[first:first + count])  # the usual case: no copies
        else:
            out[wanted] = stream.standard_normal((int(offsets.max()) + 1, dim))[offsets]
    return out


class Backend:
    """Base class: ``xp`` is the array module; subclasses fill in what differs."""

    name: str
    xp: Any
    dtype: Any
    device: Any
    noise: str  #: "host" or "device" (:data:`NOISE_KINDS`)

    def asarray(self, x: Any) -> Array:
        raise NotImplementedError

    def to_numpy(self, x: Array) -> np.ndarray:
        raise NotImplementedError

    def zeros(self, shape: int | tuple[int, ...]) -> Array:
        raise NotImplementedError

    def ones(self, shape: int | tuple[int, ...]) -> Array:
        raise NotImplementedError

    def empty(self, shape: int | tuple[int, ...]) -> Array:
        raise NotImplementedError

    def eye(self, n: int) -> Array:
        raise NotImplementedError

    def copy(self, x: Array) -> Array:
        raise NotImplementedError

    def solve_triangular(self, a: Array, b: Array, *, lower: bool, left: bool = True) -> Array:
        """Solve ``a @ x = b`` (``left=True``) or ``x @ a = b`` (``left=False``) for triangular ``a``."""
        raise NotImplementedError

    def svdvals(self, a: Array) -> Array:
        raise NotImplementedError

    def standard_normal(self, seed: int, ask_id: int, rows: Sequence[int], dim: int, out: Array | None = None) -> Array:
        """Rows of :func:`noise_rows` as arrays of this backend (same numbers on every backend).

        With ``out``, they are written into it (and ``out`` is returned).
        """
        values = self.asarray(noise_rows(seed, ask_id, rows, dim))
        if out is None:
            return values
        out[...] = values
        return out

    def is_array(self, x: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}({self.dtype}, {self.device})"


class NumpyBackend(Backend):
    name = "numpy"
    xp = np
    device = "cpu"
    noise = "host"

    def __init__(self, dtype: Any = "float64") -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype must be a floating type, got {self.dtype}")

    def asarray(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach"):  # a torch tensor handed to the numpy backend
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=self.dtype)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def ones(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return np.ones(shape, dtype=self.dtype)

    def empty(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n, dtype=self.dtype)

    def copy(self, x: Array) -> np.ndarray:
        return np.array(x, copy=True)

    def solve_triangular(self, a: Array, b: Array, *, lower: bool, left: bool = True) -> np.ndarray:
        if a.shape[0] <= SMALL_TRIANGULAR:
            # scipy's trsm hands even an 8×8 solve to its own OpenBLAS threads, which then compete with
            # numpy's pool: 4–8 ms a call on 2 busy cores instead of 0.01 ms. numpy's LU solve stays on
            # one thread below 10⁴ matrix entries and is exact for triangular input (with B upper
            # triangular, as in sampling, LU does not pivot: it is back substitution)
            return np.linalg.solve(a, b) if left else np.linalg.solve(a.T, b.T).T
        try:
            from scipy.linalg import solve_triangular
        except ImportError:  # numpy has no triangular solve; a general solve is exact, only slower
            return np.linalg.solve(a, b) if left else np.linalg.solve(a.T, b.T).T
        if left:
            return solve_triangular(a, b, lower=lower, check_finite=False)
        return solve_triangular(a, b.T, trans="T", lower=lower, check_finite=False).T

    def svdvals(self, a: Array) -> np.ndarray:
        return np.linalg.svd(a, compute_uv=False)

    def is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def standard_normal(self, seed: int, ask_id: int, rows: Sequence[int], dim: int, out: Array | None = None) -> Array:
        if out is not None and out.dtype == np.float64 and out.flags.c_contiguous:  # straight into place
            return noise_rows(seed, ask_id, rows, dim, out=out)
        return super().standard_normal(seed, ask_id, rows, dim, out)


class TorchBackend(Backend):
    """torch tensors on an explicit device and dtype (float64 by default, for exactness checks).

    ``noise="host"``: random normals are drawn on the host by :func:`noise_rows` and moved to the
    device in one explicit copy, so a seed gives the same candidates on numpy, torch-CPU and CUDA, and
    Ray workers can regenerate them. On CPU the copy is free (``torch.from_numpy`` shares memory).
    ``noise="device"``: they are drawn on the device by :func:`es_ngd.device_noise.device_normals`
    (other numbers than numpy's, no host work, no copy). ``None`` picks "device" on CUDA, else "host".
    """

    name = "torch"

    def __init__(self, dtype: Any = "float64", device: Any = "cpu", noise: str | None = None) -> None:
        import torch  # imported here so that `import es_ngd` works without torch

        self.xp = torch
        self.dtype = getattr(torch, str(dtype).replace("torch.", "")) if not isinstance(
            dtype, torch.dtype) else dtype
        if not self.dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating type, got {self.dtype}")
        self.device = torch.device(device)
        if noise not in (None, *NOISE_KINDS):
            raise ValueError(f"noise must be one of {NOISE_KINDS} or None, got {noise!r}")
        self.noise = noise if noise is not None else ("device" if self.device.type == "cuda" else "host")

    def standard_normal(self, seed: int, ask_id: int, rows: Sequence[int], dim: int, out: Array | None = None) -> Array:
        if self.noise == "host":
            return super().standard_normal(seed, ask_id, rows, dim, out)
        from es_ngd.device_noise import device_normals

        values = device_normals(seed, ask_id, rows, dim, dtype=self.dtype, device=self.device)
        if out is None:
            return values
        out.copy_(values)
        return out

    def describe(self) -> str:
        return f"{self.name}({self.dtype}, {self.device}, noise={self.noise})"

    def asarray(self, x: Any) -> Any:
        torch = self.xp
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()

    def zeros(self, shape: int | tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    def ones(self, shape: int | tuple[int, ...]) -> Any:
        return self.xp.ones(shape, dtype=self.dtype, device=self.device)

    def empty(self, shape: int | tuple[int, ...]) -> Any:
        return self.xp.empty(shape, dtype=self.dtype, device=self.device)

    def eye(self, n: int) -> Any:
        return self.xp.eye(n, dtype=self.dtype, device=self.device)

    def copy(self, x: Array) -> Any:
        return x.clone()

    def solve_triangular(self, a: Array, b: Array, *, lower: bool, left: bool = True) -> Any:
        return self.xp.linalg.solve_triangular(a, b, upper=not lower, left=left)

    def svdvals(self, a: Array) -> Any:
        return self.xp.linalg.svdvals(a)

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self.xp.Tensor)


def get_backend(backend: str | Backend = "numpy", *, dtype: Any = "float64", device: Any = None,
                noise: str | None = None) -> Backend:
    """A backend by name (``"numpy"`` or ``"torch"``), or the one passed in."""
    if isinstance(backend, Backend):
        if noise is not None and noise != backend.noise:
            raise ValueError(f"noise={noise!r} but the backend passed in draws its noise {backend.noise!r}")
        return backend
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only, got device={device!r}")
        if noise not in (None, "host"):
            raise ValueError(f"noise={noise!r} needs backend='torch': the numpy backend draws its noise on the host")
        return NumpyBackend(dtype)
    if backend == "torch":
        try:
            return TorchBackend(dtype, "cpu" if device is None else device, noise)
        except ImportError as err:
            raise ImportError("backend='torch' needs PyTorch: pip install 'es-ngd[torch]'") from err
    raise ValueError(f"unknown backend {backend!r}; valid: 'numpy', 'torch' or a Backend instance")



__all__ = ["NOISE_KINDS", "SMALL_TRIANGULAR", "Backend", "NumpyBackend", "TorchBackend", "get_backend", "noise_rows"]
