"""Standard normal noise drawn on a torch device from a counter-based generator (``noise="device"``).

Host noise (:func:`es_ngd.backend.noise_rows`) costs about 8 ns a normal on the CPU plus a copy to
the device: at ``p·n = 10⁸`` that is most of a GPU generation. Here every normal is a pure function
of ``(seed, ask, row, column)``, computed by elementwise tensor operations on the device:

1. the key ``k = mix(mix(seed) ⊕ ask)`` (Python integers, on the host, once per ask);
2. for the pair of columns ``(2j, 2j+1)`` of row ``r``, the counter ``c = r·⌈p/2⌉ + j`` and 64 random
   bits ``mix(k + (c + 1)·γ)``: SplitMix64 (Steele, Lea and Flood, 2014) evaluated at position
   ``c`` of stream ``k``, a generator that passes BigCrush and needs nothing but integer products,
   shifts and xors, so any subset of rows is drawn without the rest;
3. Box–Muller on the two 32-bit halves: ``√(−2 ln u₁) · (cos 2πu₂, sin 2πu₂)``, computed in float64
   and **rounded to float32** (then cast to the backend's dtype).

The rounding in step 3 is what makes a value independent of where it sits in a tensor. torch's CPU
kernels evaluate ``log``/``cos`` with SIMD code in the body of a tensor and scalar code in its tail
(and the split depends on the tensor's size and thread count); the two may differ by one float64
ulp, which survives rounding to float32 only if the value lies within that ulp of a float32 rounding
boundary (about 2⁻²⁹ of values). So a subset of rows regenerates the full draw's rows (tested), and
CUDA should give the CPU's numbers but for such values (``benchmarks/gpu_generation.py`` counts them;
not yet run on a GPU). The noise has
float32 resolution in both dtypes, more than the ≈ 1e-3 relative accuracy an evolution strategy's
sample needs.

torch has no unsigned 64-bit arithmetic on every device, so the integer steps run on int64: products
and sums wrap modulo 2⁶⁴ exactly as unsigned ones do, and a logical right shift is an arithmetic one
with the sign bits masked off.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2⁶⁴ / golden ratio, odd
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_TWO_PI = 2.0 * math.pi
_INV_2_32 = 1.0 / 2.0**32


def _signed(value: int) -> int:
    """An unsigned 64-bit value as the int64 with the same bits."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _mix_host(value: int) -> int:
    """SplitMix64's output function on a Python integer (modulo 2⁶⁴)."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * _MIX1) & _MASK64
    value = ((value ^ (value >> 27)) * _MIX2) & _MASK64
    return value ^ (value >> 31)


def stream_key(seed: int, ask_id: int) -> int:
    """The 64-bit key of ask ``ask_id`` of a run seeded ``seed`` (an unsigned Python integer)."""
    return _mix_host(_mix_host(int(seed) * _GAMMA + 1) ^ int(ask_id))


def _shift_right(torch: Any, x: Any, bits: int) -> Any:
    """Logical right shift of int64 ``x`` (a new tensor)."""
    return torch.bitwise_and(torch.bitwise_right_shift(x, bits), (1 << (64 - bits)) - 1)


def _mix_(torch: Any, x: Any) -> Any:
    """SplitMix64's output function on an int64 tensor, in place (returns ``x``)."""
    x.bitwise_xor_(_shift_right(torch, x, 30)).mul_(_signed(_MIX1))
    x.bitwise_xor_(_shift_right(torch, x, 27)).mul_(_signed(_MIX2))
    return x.bitwise_xor_(_shift_right(torch, x, 31))


def device_normals(seed: int, ask_id: int, rows: Any, dim: int, *, dtype: Any, device: Any) -> Any:
    """Standard normal rows ``rows`` (row indices, any order) of ask ``ask_id``: a ``(len(rows), dim)``
    tensor of ``dtype`` on ``device``, drawn there (see the module docstring)."""
    import torch

    rows = torch.as_tensor(np.asarray(rows, dtype=np.int64).reshape(-1), device=device)
    pairs = (dim + 1) // 2
    key = stream_key(seed, ask_id)
    # state = k + (c + 1)·γ with c = r·pairs + j, i.e. (k + γ) + r·(pairs·γ) + j·γ, all modulo 2⁶⁴
    state = rows[:, None] * _signed(pairs * _GAMMA) + (
        torch.arange(pairs, dtype=torch.int64, device=device) * _signed(_GAMMA) + _signed(key + _GAMMA))[None, :]
    bits = _mix_(torch, state)
    # u₁ ∈ (0, 1) from the high half (never 0: the log stays finite), u₂ ∈ [0, 1) from the low half
    radius = _shift_right(torch, bits, 32).to(torch.float64).add_(0.5).mul_(_INV_2_32)
    radius = radius.log_().mul_(-2.0).sqrt_()
    angle = torch.bitwise_and(bits, 0xFFFFFFFF).to(torch.float64).mul_(_INV_2_32 * _TWO_PI)
    del bits, state
    out = torch.empty((rows.numel(), pairs, 2), dtype=torch.float32, device=device)
    torch.mul(radius, torch.cos(angle), out=out[:, :, 0])
    torch.mul(radius, angle.sin_(), out=out[:, :, 1])
    out = out.reshape(rows.numel(), 2 * pairs)
    if 2 * pairs != dim:
        out = out[:, :dim]
    return out.to(dtype=dtype, memory_format=torch.contiguous_format)


__all__ = ["device_normals", "stream_key"]
