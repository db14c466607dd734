"""Small summary statistics (no numpy needed)."""

from __future__ import annotations

import math


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]."""
    v = sorted(x for x in values if x is not None and not math.isnan(x))
    if not v:
        return None
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(values: list[float]) -> dict:
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return {"n": 0, "median": None, "p90": None, "max": None, "min": None, "mean": None}
    return {"n": len(v), "median": percentile(v, 50), "p90": percentile(v, 90),
            "max": max(v), "min": min(v), "mean": sum(v) / len(v)}


def fmt(x, digits: int = 2, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}{unit}"
