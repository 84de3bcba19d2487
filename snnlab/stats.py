"""Statistics for comparing training runs: a mean with its confidence interval, the paired difference of two
methods over the same seeds, and the sentence that says whether the difference is resolved.

Every comparison in snnlab's notebooks and in ``make run`` is over a handful of seeds, so the question is always
the same: is the difference larger than what the seeds alone produce? ``paired_difference`` answers it with the
Student-t interval of the mean per-seed difference (seeds are the pairing: the same seed gives both methods the
same initial weights and data order), or with a percentile bootstrap when asked. A difference is *resolved* when
its interval excludes 0.

    >>> from snnlab import stats
    >>> d = stats.paired_difference([0.969, 0.961, 0.969], [0.956, 0.964, 0.969])
    >>> d.resolved
    False
    >>> print(stats.sentence("TET", "SDT", d))
    TET - SDT = +0.0033 (95% CI -0.0178 .. +0.0245, t interval, 3 paired runs): not resolved
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Interval", "mean_ci", "paired_difference", "bootstrap_ci", "sentence", "METHODS"]

METHODS = ("t", "bootstrap")


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval. ``low``/``high`` are NaN when it cannot be computed (one value)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float
    level: float
    method: str

    @property
    def resolved(self) -> bool:
        """True if the interval exists and excludes 0 (for a difference: the sign is resolved)."""
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.mean:.4f} (n = {self.n}: no interval)"
        return f"{self.mean:.4f} ({100 * self.level:g}% CI {self.low:.4f} .. {self.high:.4f}, n = {self.n})"


def _values(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty: need at least one value")
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)][0]
        raise ValueError(f"{name} contains {bad}: every value must be a finite number")
    return a


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return float(level)


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of ``values`` with the Student-t confidence interval ``mean +- t_{n-1} sd / sqrt(n)``.

    One value gives the mean with a NaN interval (a single run says nothing about the spread)."""
    a = _values(values, "values")
    level = _check_level(level)
    n = a.size
    m = float(a.mean())
    if n < 2:
        return Interval(m, math.nan, math.nan, n, math.nan, level, "t")
    from scipy import stats as _st

    sd = float(a.std(ddof=1))
    h = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(m, m - h, m + h, n, sd, level, "t")


def bootstrap_ci(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean,
                 level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic(values)``: ``n_boot`` resamples with replacement, seeded (the
    same call gives the same interval). With few values the percentile interval is too narrow; prefer the t
    interval below about 10 values."""
    a = _values(values, "values")
    level = _check_level(level)
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    est = float(statistic(a))
    n = a.size
    if n < 2:
        return Interval(est, math.nan, math.nan, n, math.nan, level, "bootstrap")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = np.apply_along_axis(statistic, 1, a[idx]) if statistic is not np.mean else a[idx].mean(axis=1)
    low, high = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(est, float(low), float(high), n, float(a.std(ddof=1)), level, "bootstrap")


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95, method: str = "t",
                      n_boot: int = 10_000, seed: int = 0) -> Interval:
    """Interval of the mean of ``a[i] - b[i]`` (the same seed ``i`` for both methods).

    ``method``: ``"t"`` (Student t on the differences; the default) or ``"bootstrap"`` (percentile bootstrap)."""
    x, y = _values(a, "a"), _values(b, "b")
    if x.size != y.size:
        raise ValueError(f"a paired difference needs one value per seed in each: got {x.size} and {y.size} values")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    d = x - y
    return mean_ci(d, level) if method == "t" else bootstrap_ci(d, level=level, n_boot=n_boot, seed=seed)


def sentence(name_a: str, name_b: str, diff: Interval, digits: int = 4) -> str:
    """``"A - B = +0.0033 (95% CI -0.0178 .. +0.0245, t interval, 3 paired runs): not resolved"``."""
    f = f"{{:+.{digits}f}}"
    head = f"{name_a} - {name_b} = {f.format(diff.mean)}"
    if math.isnan(diff.low):
        return f"{head} ({diff.n} paired run: no interval, not resolved)"
    verdict = (f"resolved, {name_a} {'higher' if diff.low > 0 else 'lower'}" if diff.resolved else "not resolved")
    return (f"{head} ({100 * diff.level:g}% CI {f.format(diff.low)} .. {f.format(diff.high)}, {diff.method} interval, "
            f"{diff.n} paired runs): {verdict}")
