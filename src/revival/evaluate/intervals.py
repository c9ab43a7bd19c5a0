"""95% intervals for accuracies (shares of images) and their differences, and verdicts read from them.

Wilson's score interval for one share (good coverage down to a handful of images), Newcombe's
hybrid score interval (method 10) for the difference of two independent shares. A comparison
against a threshold reads "above" or "below" only when the whole interval is on one side, and
"inconclusive" when the interval spans it.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def share(k: int, n: int) -> dict:
    """{accuracy, k, n, ci95} of k hits among n images."""
    lo, hi = wilson(k, n)
    return {"accuracy": k / n if n else None, "k": int(k), "n": int(n), "ci95": [round(lo, 4), round(hi, 4)]}


def pooled(shares: list[dict]) -> dict:
    """One share over the images of several (e.g. the preserved concepts)."""
    return share(sum(s["k"] for s in shares), sum(s["n"] for s in shares))


def difference(a: dict, b: dict, z: float = Z95) -> dict:
    """a - b of two shares with Newcombe's hybrid score interval."""
    pa, pb = a["k"] / a["n"], b["k"] / b["n"]
    la, ua = wilson(a["k"], a["n"], z)
    lb, ub = wilson(b["k"], b["n"], z)
    d = pa - pb
    lo = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return {"difference": d, "ci95": [round(max(-1.0, lo), 4), round(min(1.0, hi), 4)]}


def versus(interval: tuple[float, float] | list[float], threshold: float) -> str:
    """"above" / "below" when the interval lies wholly on one side of `threshold`, else "inconclusive"."""
    lo, hi = interval
    if lo > threshold:
        return "above"
    if hi < threshold:
        return "below"
    return "inconclusive"


def t_quantile(df: int, z: float = Z95) -> float:
    """Student's t quantile matching normal quantile `z` (Cornish-Fisher expansion; within 1e-3 for df >= 3)."""
    if df <= 0:
        return math.inf
    z3, z5, z7 = z**3, z**5, z**7
    return (z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df**2)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df**3))


def mean_interval(values) -> dict:
    """{mean, sd, n, ci95} of a sample (e.g. CLIP scores of images), with Student's t interval."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return {"mean": None, "sd": None, "n": 0, "ci95": None}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "sd": None, "n": 1, "ci95": None}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "n": n, "ci95": [round(mean - half, 5), round(mean + half, 5)]}
