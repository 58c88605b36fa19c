"""Lower-triangular Toeplitz group ``toeplitz`` (MATH.md §4): ``B = Σⱼ bⱼ Nʲ``, O(n·p·log p).

``N`` is the down-shift (ones on the first subdiagonal), so ``B`` is fixed by its first column
``b``; these matrices form a commutative algebra in which a product is a polynomial product
truncated to ``p`` terms and the inverse is the inverse power series of ``b``. Everything below is
done on coefficient vectors with the FFT; no ``p×p`` array is formed (except by :meth:`dense`).

The tangent ``M = Σⱼ mⱼ Nʲ`` has Fisher weights ``2p`` for ``m₀`` and ``p − j`` for ``mⱼ``
(``F(dM) = ½‖dM + dMᵀ‖²``), so the natural gradient is ``m₀ = ½ (mean(diag G) − shift)`` and
``mⱼ = mean of the j-th subdiagonal of G``; those sums are autocorrelations of the ``zᵢ``. The
factor dict holds ``"b"`` and the first column ``"binv"`` of ``B⁻¹`` (recomputed from ``b`` after
every step, O(p log p)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from es_ngd.backend import Array
from es_ngd.groups.base import Factor, MatrixGroup, Tangent, snes_learning_rate

#: the symbol's supremum is taken on a grid of at least this many points per coefficient (see
#: :meth:`Toeplitz._symbol_bound`)
SYMBOL_GRID_FACTOR = 8


def fft_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: fast for every FFT library, and at most 25 % above ``n``
    where a power of two can be 100 % above it."""
    best = 1 << max(int(n) - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35 << max(math.ceil(n / power35) - 1, 0).bit_length()  # × the power of 2 needed
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


class Toeplitz(MatrixGroup):
    structure = "toeplitz"

    # -- coefficient-vector arithmetic (the last axis holds the coefficients) ----------------------
    def _multiply(self, a: Array, b: Array, length: int) -> Array:
        """First ``length`` coefficients of the polynomial product ``a · b`` (a Toeplitz product)."""
        fft = self.backend.xp.fft
        size = fft_length(a.shape[-1] + b.shape[-1] - 1)
        return fft.irfft(fft.rfft(a, size) * fft.rfft(b, size), size)[..., :length]

    def _correlate(self, c: Array, z: Array) -> Array:
        """Rows ``x`` with ``xⱼ = Σₖ cₖ z_{j+k}``: the row form ``z @ T`` of the Toeplitz ``T`` of ``c``.

        Both are zero-padded to at least ``2p − 1`` points, so the circular correlation has no
        wrap-around in its first ``p`` entries.
        """
        xp, p = self.backend.xp, self.dim
        size = fft_length(2 * p - 1)
        spectrum = xp.conj(xp.fft.rfft(c, size)) * xp.fft.rfft(z, size)
        return xp.fft.irfft(spectrum, size)[..., :p]

    def _inverse_series(self, b: Array) -> Array:
        """The first ``p`` coefficients of ``1 / b`` by Newton's iteration ``c ← c − c(bc − 1)``.

        Each round doubles the number of correct coefficients, so the cost is O(p log p).
        """
        c = 1.0 / b[:1]
        while c.shape[0] < self.dim:
            known, target = c.shape[0], min(2 * c.shape[0], self.dim)
            residual = self._multiply(b[:target], c, target)  # b·c − 1 starts at the power x^known
            residual[0] -= 1.0
            # c·(b·c − 1) also starts at x^known, so the first `known` coefficients of c stay
            c = self.backend.xp.concatenate([c, -self._multiply(c, residual, target)[known:]])
        return c

    def _symbol_bound(self, coefficients: Array) -> float:
        """An upper bound on ``max |Σⱼ aⱼ e^{ijω}|`` over the unit circle, hence on ‖T(a)‖₂.

        A Toeplitz section is a compression of the multiplication operator by its symbol, so its
        spectral norm is at most the symbol's supremum. On a grid of ``N`` points every ω lies
        within ``π/N`` of a grid point, and Bernstein's inequality ``|P'| ≤ deg(P)·max|P|`` then
        gives ``max|P| ≤ max_grid|P| / (1 − π·deg(P)/N)``; with ``N ≥ 8p`` the factor is ≤ 1.65.
        """
        xp, p = self.backend.xp, self.dim
        size = fft_length(SYMBOL_GRID_FACTOR * p)
        grid_max = float(abs(xp.fft.rfft(coefficients, size)).max())
        return grid_max / (1.0 - math.pi * (p - 1) / size)

    # -- the group interface ---------------------------------------------------------------------
    def identity(self, scale: float = 1.0) -> Factor:
        b = self.backend.zeros(self.dim)
        b[0] = scale
        c = self.backend.zeros(self.dim)
        c[0] = 1.0 / scale
        return {"b": b, "binv": c}

    def sample(self, factor: Factor, z: Array) -> Array:
        return self._correlate(factor["binv"], z)  # z @ B⁻¹, B⁻¹ the Toeplitz matrix of 1/b

    def whiten(self, factor: Factor, x: Array) -> Array:
        return self._correlate(factor["b"], x)  # x @ B

    def natural_direction(self, z: Array, u: Array, shift: Any = 0.0) -> Tangent:
        xp, p = self.backend.xp, self.dim
        size = fft_length(2 * p - 1)
        power = abs(xp.fft.rfft(z, size)) ** 2  # per row: the spectrum of its autocorrelation
        lag_sums = xp.fft.irfft(u @ power, size)[:p]  # Σᵢ uᵢ Σₖ z_{i,k+j} z_{i,k}: subdiagonal sums of G
        counts = self.backend.asarray(np.arange(p, 0, -1))  # entries on the j-th subdiagonal: p − j
        m = lag_sums / counts
        m[0] = 0.5 * (m[0] - shift)  # the diagonal has Fisher weight 2p, not p
        return {"m": m}

    def magnitude(self, tangent: Tangent) -> float:
        return self._symbol_bound(tangent["m"])

    def retract(self, factor: Factor, tangent: Tangent, step: float) -> Factor:
        # h(M) = I + M + ½M² is the Toeplitz matrix of δ + m + ½ m·m (truncated products)
        m = step * tangent["m"]
        h = m + 0.5 * self._multiply(m, m, self.dim)
        h[0] += 1.0
        b = self._multiply(factor["b"], h, self.dim)
        return {"b": b, "binv": self._inverse_series(b)}

    def logdet(self, factor: Factor) -> float:
        return self.dim * math.log(abs(float(factor["b"][0])))

    def variances(self, factor: Factor) -> Array:
        # column j of B⁻¹ is (0, …, 0, c₀, …, c_{p−1−j}): its squared norm is a partial sum of c²
        xp, c = self.backend.xp, factor["binv"]
        return xp.flip(xp.cumsum(c * c, 0), (0,))

    def condition_number(self, factor: Factor) -> float:
        """An upper bound: ``(sup|b̂| · sup|ĉ|)²`` with ``ĉ`` the symbol of ``B⁻¹`` (:meth:`_symbol_bound`).

        ``‖B‖₂ ≤ sup|b̂|`` and ``‖B⁻¹‖₂ ≤ sup|ĉ|``; the bound is tight as p grows when ``b`` has no
        zero in the unit disc (then ``ĉ = 1/b̂``), and it costs O(p log p) instead of O(p³).
        """
        return (self._symbol_bound(factor["b"]) * self._symbol_bound(factor["binv"])) ** 2

    def _toeplitz_dense(self, first_column: Array) -> Array:
        index = np.arange(self.dim)  # host indices: both libraries index with them
        return self.backend.xp.tril(first_column[(index[:, None] - index[None, :]) % self.dim])

    def dense(self, factor: Factor) -> Array:
        return self._toeplitz_dense(factor["b"])

    def tangent_dense(self, tangent: Tangent) -> Array:
        return self._toeplitz_dense(tangent["m"])

    @property
    def default_learning_rate(self) -> float:
        """``0.75 η_SNES``: p parameters, like the diagonal group, but on AR-precision quadratics
        (benchmarks/results/structured_learning_rates.txt) SNES's rate is at the edge of stability
        (at p = 30 one seed needs twice the evaluations, 1.25 η_SNES fails at p = 120), so this keeps
        a margin at a cost of up to 25 % in evaluations."""
        return 0.75 * snes_learning_rate(self.dim)

    def num_parameters(self) -> int:
        return self.dim
