"""The few special functions the t family needs, in numpy (scipy is not a dependency).

``log_minus_digamma(x) = log x - psi(x)``: the recurrence psi(x) = psi(x + 1) - 1/x lifts
small arguments to x >= 8, where the asymptotic series of log x - psi(x) is summed directly
(no cancellation of two nearly equal numbers at large x, where it is about 1 / (2x)).
``log_gamma_ratio(a, b) = lgamma(a + b) - lgamma(a)``: ``math.lgamma`` for small a, Stirling's
series of the difference for large a (the two lgamma values would cancel: at a = 5e7 they
are 8e8 each).  Both are checked against scipy in tests/test_t_family.py.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
_LIFT = 8.0
# log x - psi(x) = 1/(2x) + sum_k B_2k / (2k x^2k): 1/12, -1/120, 1/252, -1/240, 1/132, ...
_SERIES = (1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132, -691.0 / 32760, 1.0 / 12)
_LARGE = 100.0


def log_minus_digamma(x: Array | float) -> Array:
    """log(x) - digamma(x) for x > 0, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    lifted = x.copy()
    extra = np.zeros_like(x)
    while True:
        small = lifted < _LIFT
        if not small.any():
            break
        extra = np.where(small, extra + 1.0 / np.where(small, lifted, 1.0), extra)
        lifted = np.where(small, lifted + 1.0, lifted)
    inv2 = 1.0 / (lifted * lifted)
    series = np.zeros_like(x)
    for c in reversed(_SERIES):
        series = series * inv2 + c
    tail = 0.5 / lifted + series * inv2
    # log x - psi(x) = [log y - psi(y)] - log(y / x) + sum_{i < n} 1 / (x + i), y = x + n
    return tail - np.log(lifted / x) + extra


def log_minus_digamma_scalar(x: float) -> float:
    """``log_minus_digamma`` of one number, in plain Python (the root solve calls it often)."""
    y, extra = x, 0.0
    while y < _LIFT:
        extra += 1.0 / y
        y += 1.0
    inv2 = 1.0 / (y * y)
    series = 0.0
    for c in reversed(_SERIES):
        series = series * inv2 + c
    return 0.5 / y + series * inv2 - math.log(y / x) + extra


def digamma(x: Array | float) -> Array:
    """psi(x) for x > 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.log(x) - log_minus_digamma(x)


def _stirling_tail(z: Array) -> Array:
    # lgamma(z) - [(z - 1/2) log z - z + log(2 pi) / 2]
    inv2 = 1.0 / (z * z)
    return (1.0 / 12 + inv2 * (-1.0 / 360 + inv2 * (1.0 / 1260 - inv2 / 1680))) / z


def log_gamma_ratio(a: Array | float, b: Array | float) -> Array:
    """lgamma(a + b) - lgamma(a) for a > 0, b >= 0, elementwise (broadcast)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.empty(a.shape)
    flat_a, flat_b, flat = a.ravel(), b.ravel(), out.reshape(-1)
    for i, (ai, bi) in enumerate(zip(flat_a.tolist(), flat_b.tolist(), strict=True)):
        if bi == 0.0:
            flat[i] = 0.0
        elif ai < _LARGE:
            flat[i] = math.lgamma(ai + bi) - math.lgamma(ai)
        else:
            z = ai + bi
            # (z - 1/2) log z - (a - 1/2) log a - b = (a - 1/2) log1p(b/a) + b log z - b
            main = (ai - 0.5) * math.log1p(bi / ai) + bi * math.log(z) - bi
            tail = _stirling_tail(np.array([z, ai]))
            flat[i] = main + float(tail[0] - tail[1])
    return out
