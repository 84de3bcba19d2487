"""snnlab.stats: t intervals against scipy's paired t-test and the closed form, the bootstrap's coverage and
determinism, the resolved/not-resolved verdict, and clear errors for bad input."""
import math

import numpy as np
import pytest
from scipy import stats as st

from snnlab import stats


def test_paired_t_interval_equals_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        a, b = rng.normal(0.96, 0.01, n), rng.normal(0.95, 0.01, n)
        d = stats.paired_difference(a, b, level=0.9)
        ci = st.ttest_rel(a, b).confidence_interval(0.9)
        assert math.isclose(d.low, ci.low, rel_tol=1e-12) and math.isclose(d.high, ci.high, rel_tol=1e-12)
        assert math.isclose(d.mean, float(np.mean(a - b)), rel_tol=1e-12) and d.n == n


def test_t_interval_closed_form_for_two_values():
    # n = 2: mean +- t_{0.975,1} * |x1 - x2| / 2 with t_{0.975,1} = tan(pi * 0.475) (the Cauchy quantile)
    iv = stats.mean_ci([1.0, 3.0])
    h = math.tan(math.pi * 0.475) * 1.0
    assert math.isclose(iv.low, 2.0 - h, rel_tol=1e-10) and math.isclose(iv.high, 2.0 + h, rel_tol=1e-10)


def test_one_value_has_no_interval_and_is_never_resolved():
    iv = stats.mean_ci([0.97])
    assert iv.mean == 0.97 and math.isnan(iv.low) and not iv.resolved
    assert "no interval" in stats.sentence("A", "B", stats.paired_difference([0.97], [0.95]))


def test_resolved_verdict_and_sentence():
    d = stats.paired_difference([0.97, 0.98, 0.975, 0.972, 0.979], [0.95, 0.955, 0.951, 0.949, 0.953])
    assert d.resolved and d.low > 0
    s = stats.sentence("TET", "SDT", d)
    assert s.startswith("TET - SDT = +0.0236") and s.endswith("resolved, TET higher") and "5 paired runs" in s
    d0 = stats.paired_difference([0.969, 0.961, 0.969], [0.956, 0.964, 0.969])
    assert not d0.resolved and d0.low < 0 < d0.high
    assert stats.sentence("TET", "SDT", d0).endswith("not resolved")


def test_bootstrap_is_seeded_and_covers_at_the_nominal_rate():
    x = np.random.default_rng(1).normal(0, 1, 40)
    a, b = stats.bootstrap_ci(x, seed=3), stats.bootstrap_ci(x, seed=3)
    assert (a.low, a.high) == (b.low, b.high)
    # coverage of the true mean 0 over many samples of size 40: near 95% (the percentile bootstrap runs a little low)
    rng = np.random.default_rng(2)
    covered = 0
    for k in range(300):
        s = rng.normal(0, 1, 40)
        iv = stats.bootstrap_ci(s, n_boot=1000, seed=k)
        covered += iv.low < 0 < iv.high
    assert 0.89 <= covered / 300 <= 0.99
    # a paired bootstrap is the bootstrap of the differences
    p = stats.paired_difference(x, x / 2, method="bootstrap", seed=5)
    q = stats.bootstrap_ci(x - x / 2, seed=5)
    assert (p.low, p.high, p.method) == (q.low, q.high, "bootstrap")


def test_t_interval_coverage():
    rng = np.random.default_rng(4)
    covered = sum((lambda iv: iv.low < 0.5 < iv.high)(stats.mean_ci(rng.normal(0.5, 0.1, 5))) for _ in range(2000))
    assert 0.93 <= covered / 2000 <= 0.97


@pytest.mark.parametrize("call, match", [
    (lambda: stats.mean_ci([]), "values is empty"),
    (lambda: stats.mean_ci([0.9, float("nan")]), "contains nan"),
    (lambda: stats.mean_ci([0.9, 0.8], level=95), "level must be a number strictly between 0 and 1"),
    (lambda: stats.paired_difference([1, 2, 3], [1, 2]), "one value per seed in each: got 3 and 2"),
    (lambda: stats.paired_difference([1, 2], [1, 2], method="wilcoxon"), "method must be one of"),
    (lambda: stats.bootstrap_ci([1, 2], n_boot=10), "n_boot must be an integer >= 100"),
])
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_module_example_runs():
    import doctest

    assert doctest.testmod(stats).failed == 0
