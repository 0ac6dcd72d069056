"""Numbers across seeds: a mean with its 95% interval, and the difference of two arms with its interval
(paired over the seeds both have when it can be), and whether that settles an expected ordering.

>>> summarise([0.81, 0.84, 0.79])                      # Spread(mean=0.8133, low=..., high=..., n=3)
>>> compare({0: .81, 1: .84, 2: .79}, {0: .55, 1: .60, 2: .52}, expect="a>b")
Difference(diff=0.2567, low=..., high=..., method='paired over seeds 0, 1, 2', verdict='holds')

The intervals:

* one arm over n >= 2 seeds: mean +- t(0.975, n-1) * sd / sqrt(n) (Student's t; with 2 or 3 seeds it is
  wide: that is what 2 or 3 seeds can say), clipped to [0, 1]; when every seed gives the same value, the
  Wilson interval of the runs' pooled test count instead (a t interval of no width would claim certainty);
* one run (n = 1): the Wilson interval of its test count (test-set noise only: no seed spread is known);
* a difference, when the two arms share >= 2 seeds: the paired t interval of the per-seed differences
  (same seed, same data order and initial weights where the switches allow: the seed's luck cancels);
  else Welch's t interval when both have >= 2 runs; else (one run each) Newcombe's interval for the
  difference of two proportions from the two test counts.

``verdict`` of an expected ordering ``a > b``: ``holds`` when the whole interval of a - b is above 0,
``reversed`` when it is below 0, ``unresolved`` when it contains 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from .metrics import wilson_interval

#: two-sided 95% quantiles of Student's t, degrees of freedom 1..30
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (a fractional df is rounded down,
    the wider interval); above 30 the Cornish-Fisher expansion around 1.96."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    d = int(math.floor(df))
    if d <= len(_T975):
        return _T975[d - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * d) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * d * d)


@dataclass
class Spread:
    """One arm's value over its runs: mean, 95% interval, sample standard deviation (None for n = 1)."""

    mean: float
    low: float
    high: float
    sd: Optional[float]
    n: int
    method: str


def summarise(values: Sequence[float], counts: Optional[tuple[int, int]] = None,
              bounds: tuple[float, float] = (0.0, 1.0)) -> Spread:
    """Mean and 95% interval of ``values`` (one per seed), clipped to ``bounds`` (the values' range:
    accuracies [0, 1], differences of accuracies [-1, 1]). One value: the Wilson interval of ``counts``
    (successes, trials) when given, else the point itself. Two or more values that are all equal (sd 0,
    e.g. every seed at 0%): the t interval would be the point itself, so with ``counts`` (pooled over the
    runs) it is the Wilson interval of the pooled count (test-set noise only: the seeds show no spread)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values to summarise")
    n = len(vals)
    mean = sum(vals) / n
    if n == 1:
        if counts is not None and counts[1] > 0:
            lo, hi = wilson_interval(int(counts[0]), int(counts[1]))
            return Spread(mean, lo, hi, None, 1, f"Wilson interval of one run's {counts[1]} test puzzles")
        return Spread(mean, mean, mean, None, 1, "one run, no interval")
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    if sd == 0 and counts is not None and counts[1] > 0:
        lo, hi = wilson_interval(int(counts[0]), int(counts[1]))
        return Spread(mean, lo, hi, 0.0, n, f"all {n} seeds equal: Wilson interval of their pooled {counts[1]} "
                                            f"test puzzles")
    half = t975(n - 1) * sd / math.sqrt(n)
    low, high = max(bounds[0], mean - half), min(bounds[1], mean + half)
    clipped = " (clipped to the possible range)" if (low, high) != (mean - half, mean + half) else ""
    return Spread(mean, low, high, sd, n, f"t interval over {n} seeds{clipped}")


@dataclass
class Difference:
    """a - b with its 95% interval, how it was computed, and the verdict on the expected ordering."""

    diff: float
    low: float
    high: float
    method: str
    verdict: str  # holds | reversed | unresolved (of the expected ordering a > b)
    paired: bool


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "holds"
    if high < 0:
        return "reversed"
    return "unresolved"


def compare(a: Mapping[int, float], b: Mapping[int, float], counts_a: Optional[tuple[int, int]] = None,
            counts_b: Optional[tuple[int, int]] = None) -> Difference:
    """The difference of means a - b (seed -> value for each arm) with its 95% interval (module
    docstring) and the verdict on "a > b". ``counts_*``: (right, puzzles) of a one-run arm's test split."""
    if not a or not b:
        raise ValueError("both arms need at least one run")
    common = sorted(set(a) & set(b))
    if len(common) >= 2:
        d = [a[s] - b[s] for s in common]
        sp = summarise(d, bounds=(-1.0, 1.0))
        method = f"paired over seeds {', '.join(map(str, common))}"
        return Difference(sp.mean, sp.low, sp.high, method, _verdict(sp.low, sp.high), True)
    va, vb = list(a.values()), list(b.values())
    ma, mb = sum(va) / len(va), sum(vb) / len(vb)
    diff = ma - mb
    if len(va) >= 2 and len(vb) >= 2:
        sa, sb = summarise(va).sd, summarise(vb).sd
        ea, eb = sa ** 2 / len(va), sb ** 2 / len(vb)
        se = math.sqrt(ea + eb)
        if se == 0:
            return Difference(diff, diff, diff, "Welch (no spread)", _verdict(diff, diff), False)
        df = (ea + eb) ** 2 / ((ea ** 2 / (len(va) - 1)) + (eb ** 2 / (len(vb) - 1)))
        half = t975(df) * se
        low, high = max(-1.0, diff - half), min(1.0, diff + half)
        return Difference(diff, low, high, f"Welch t, {len(va)} and {len(vb)} runs", _verdict(low, high), False)
    if len(va) == 1 and len(vb) == 1 and counts_a and counts_b and counts_a[1] and counts_b[1]:
        pa, pb = counts_a[0] / counts_a[1], counts_b[0] / counts_b[1]
        la, ua = wilson_interval(*counts_a)
        lb, ub = wilson_interval(*counts_b)
        d = pa - pb
        low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
        high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
        return Difference(d, low, high, "Newcombe, one run each (test-set noise only)", _verdict(low, high), False)
    return Difference(diff, -math.inf, math.inf, "too few runs for an interval", "unresolved", False)


def overlap(x: Spread, y: Spread) -> bool:
    """Whether two arms' 95% intervals overlap."""
    return x.low <= y.high and y.low <= x.high


__all__ = ["Spread", "Difference", "summarise", "compare", "overlap", "t975"]
