"""One generation's candidates, described rather than listed.

A :class:`Population` carries the search distribution ``(μ, σ, B)`` and the noise key of one
``ask``. Any process holding it (a Ray worker, a resumed run) regenerates any subset of rows
bit for bit with :meth:`Population.candidates`, so evaluators need only indices, never arrays of
candidates, and know nothing of the strategy that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_ngd.backend import Array
from es_ngd.groups.base import Factor, MatrixGroup

#: Rows are computed in aligned blocks of this many candidates (rows 0–15, 16–31, …); a subset fills
#: the rest of its blocks with zeros. BLAS rounds differently for different numbers of rows (gemv for
#: one row, gemm kernels chosen by size), so this is what makes a worker's rows bit-identical to
#: the same rows computed by the process that asked.
ROW_BLOCK = 16

#: with device noise, rows are drawn and transformed in chunks of about this many entries: a chunk of
#: noise is the only temporary of the population's kind, so nothing of size n·p is held twice
#: (2²⁶ entries: 256 MiB in float32; one chunk, with no Python loop, up to p·n ≈ 6.7·10⁷)
CHUNK_ENTRIES = 2**26


@dataclass(frozen=True, eq=False)
class Population:
    mean: Array
    sigma: float
    factor: Factor
    group: MatrixGroup
    seed: int
    ask_id: int
    size: int
    mirrored: bool = False
    #: unit vector (whitened frame) of the step-size controller's test pair: candidates 0 and 1 are
    #: ``±‖z₀‖·v̂`` with ``z₀`` row 0's own noise (two-point adaptation, :mod:`es_ngd.step_size`)
    test_direction: Array | None = None
    #: rows computed by the process that asked (not pickled: a worker regenerates its own)
    cache: Array | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.size

    @property
    def regenerable(self) -> bool:
        """Whether another process can regenerate rows from this description (host noise), so that an
        evaluator may send it instead of the rows. Device noise is drawn on a device that a worker
        need not have: evaluators send those rows themselves."""
        return self.group.backend.noise == "host"

    def chunks(self) -> list[slice]:
        """The row ranges that ask draws, and tell regenerates, at once (device noise: by
        :data:`CHUNK_ENTRIES`; host noise: all rows)."""
        if self.regenerable:
            return [slice(0, self.size)]
        rows = max(1, CHUNK_ENTRIES // self.group.dim)
        return [slice(start, min(start + rows, self.size)) for start in range(0, self.size, rows)]

    def chunk(self, rows: slice) -> tuple[Array, Array]:
        """Noise ``z`` and candidates ``x`` of one range of :meth:`chunks`, computed afresh: with device
        noise, ``tell`` gets the noise back this way (and checks the rows it was given against ``x``)
        instead of keeping it from ``ask``, so that the population is held once."""
        z = self.noise(np.arange(rows.start, rows.stop))
        x = self.group.backend.empty(tuple(z.shape))
        self._transform_block(z, out=x)
        return z, x

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.regenerable:  # the receiver regenerates its own rows; device noise sends them
            state["cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def _indices(self, indices: Sequence[int] | None) -> np.ndarray:
        if indices is None:
            return np.arange(self.size)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.size):
            raise IndexError(f"candidate indices must lie in [0, {self.size}), got {indices!r}")
        return idx

    def noise(self, indices: Sequence[int] | None = None, out: Array | None = None) -> Array:
        """Standard normal rows ``z`` of the given candidates (written into ``out`` if given).

        With mirrored sampling, candidates ``2j`` and ``2j+1`` share stream ``j`` with opposite signs.
        """
        idx = self._indices(indices)
        backend = self.group.backend
        if not self.mirrored:
            z = backend.standard_normal(self.seed, self.ask_id, idx, self.group.dim, out=out)
        else:
            pairs = backend.standard_normal(self.seed, self.ask_id, idx // 2, self.group.dim)
            signs = backend.asarray(np.where(idx % 2 == 0, 1.0, -1.0))
            z = pairs * signs[:, None] if out is None else backend.xp.multiply(pairs, signs[:, None], out=out)
        if self.test_direction is not None and idx.size and idx.min() < 2:
            self._put_test_pair(z, idx)
        return z

    def _put_test_pair(self, z: Array, idx: np.ndarray) -> None:
        """Overwrite the rows of candidates 0 and 1 in ``z`` with the test pair ``±‖z₀‖·v̂``."""
        backend = self.group.backend
        z0 = backend.standard_normal(self.seed, self.ask_id, np.zeros(1, dtype=np.int64), self.group.dim)[0]
        length = float((z0 * z0).sum()) ** 0.5
        for position in np.flatnonzero(idx < 2):
            z[int(position)] = (length if idx[position] == 0 else -length) * self.test_direction

    def candidates(self, indices: Sequence[int] | None = None) -> Array:
        """Rows ``x = μ + σ B⁻ᵀ z`` of the given candidates (all when ``indices`` is None)."""
        if indices is None and self.cache is not None:
            return self.cache
        idx = self._indices(indices)
        if self.cache is not None and not self.regenerable:  # ask's own rows; no subset is recomputed
            return self.cache[self.group.backend.xp.as_tensor(idx, device=self.cache.device)]
        return self.transform(self.noise(idx), idx)

    def draw(self) -> tuple[Array | None, Array]:
        """What ``ask`` needs: the noise (None with device noise: tell regenerates it) and the candidates."""
        if self.regenerable:
            return self.noise_and_candidates()
        x = self.group.backend.empty((self.size, self.group.dim))
        for rows in self.chunks():
            z = self.noise(np.arange(rows.start, rows.stop))
            self._transform_block(z, out=x[rows])
        return None, x

    def noise_and_candidates(self) -> tuple[Array, Array]:
        """Noise ``z`` and candidates ``x`` of the whole population (what ``ask`` needs).

        Noise is drawn straight into ``z`` and each row block is transformed straight into ``x``, with
        the same blocks as :meth:`transform`: at large p, temporaries of the population's size cost
        more than the arithmetic (the allocator hands back fresh pages every generation).
        """
        backend, dim = self.group.backend, self.group.dim
        z, x = backend.empty((self.size, dim)), backend.empty((self.size, dim))
        for start in range(0, self.size, ROW_BLOCK):
            stop = min(start + ROW_BLOCK, self.size)
            self.noise(np.arange(start, stop), out=z[start:stop])
            self._transform_block(z[start:stop], out=x[start:stop])
        return z, x

    def transform(self, z: Array, indices: Sequence[int] | None = None) -> Array:
        """``μ + σ B⁻ᵀ z`` for rows of standard normal noise (of candidates ``indices``; default: all).

        Computed block by block (:data:`ROW_BLOCK`), so any subset of rows is bit-identical to the
        same rows of the whole population.
        """
        idx = self._indices(indices)
        if len(idx) != len(z):
            raise ValueError(f"{len(z)} noise rows for {len(idx)} candidate indices")
        backend, dim = self.group.backend, self.group.dim
        out = backend.empty((len(idx), dim))
        if np.array_equal(idx, np.arange(self.size)):  # the whole population, in order
            for start in range(0, self.size, ROW_BLOCK):
                self._transform_block(z[start:start + ROW_BLOCK], out=out[start:start + ROW_BLOCK])
            return out
        blocks = idx // ROW_BLOCK
        for block in np.unique(blocks):
            start = int(block) * ROW_BLOCK
            rows = np.flatnonzero(blocks == block)  # positions in idx and z
            padded = backend.zeros((min(ROW_BLOCK, self.size - start), dim))
            padded[idx[rows] - start] = z[rows]
            full = backend.empty(padded.shape)
            self._transform_block(padded, out=full)
            out[rows] = full[idx[rows] - start]
        return out

    def _transform_block(self, z: Array, out: Array) -> None:
        """``out = μ + σ B⁻ᵀ z`` for one row block, written in place (no temporaries of its size)."""
        self.group.backend.xp.multiply(self.group.sample(self.factor, z), self.sigma, out=out)
        out += self.mean
