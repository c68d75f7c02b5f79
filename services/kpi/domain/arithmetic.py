"""Overflow-safe arithmetic for the evaluation: every result is a finite float.

Values reach the domain as finite floats, but finite is not small: 1e308 - (-1e308) is inf, and
inf - inf is NaN, which no evaluation may carry (the models refuse it, and a status computed
from it would be meaningless). The evaluation therefore computes through these helpers, which
saturate at the largest finite float instead of overflowing. A saturated figure is still an
honest ordering ("beyond any target"); bounding values per unit and kind is the trust
boundary's job (ingest and the kpi consumer's validation), this is defence in depth.
"""

from __future__ import annotations

import math
import sys

FLOAT_MAX = sys.float_info.max


def saturate(value: float) -> float:
    """`value` with an overflow to ±inf brought back to ±FLOAT_MAX; NaN (which only an
    unguarded inf - inf makes) becomes 0."""
    if math.isnan(value):
        return 0.0
    return max(-FLOAT_MAX, min(FLOAT_MAX, value))


def difference(a: float, b: float) -> float:
    """a - b, saturated."""
    return saturate(a - b)


def total(a: float, b: float) -> float:
    """a + b, saturated."""
    return saturate(a + b)


def product(a: float, b: float) -> float:
    """a x b, saturated (0 x anything is 0)."""
    if a == 0 or b == 0:
        return 0.0
    return saturate(a * b)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator for a denominator > 0, saturated (a tiny denominator makes a
    huge ratio, not inf)."""
    return saturate(numerator / denominator)


def interpolate(v0: float, v1: float, fraction: float) -> float:
    """The point `fraction` (0..1) of the way from v0 to v1: exactly v0 and v1 at the ends,
    v0 + (v1 - v0) x t between them, or a convex combination when v1 - v0 overflows."""
    if fraction <= 0.0:
        return v0
    if fraction >= 1.0:
        return v1
    direct = v0 + (v1 - v0) * fraction
    if math.isfinite(direct):
        return direct
    return saturate(v0 * (1.0 - fraction) + v1 * fraction)
