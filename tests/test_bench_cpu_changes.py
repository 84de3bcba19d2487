"""benchmarks/bench_cpu_changes.py runs every configuration; they compute bitwise the same numbers."""
from conftest import load_benchmark


def test_every_change_row_runs_and_agrees(capsys):
    res = load_benchmark("bench_cpu_changes").main(["--repeats", "1", "--rounds", "1"])
    assert list(res) == ["baseline", "+ exact 2x2 pool", "+ malloc tuning", "+ C LIF and pool kernels", "+ C BatchNorm"]
    assert all(t > 0 for t in res.values())
    assert "every row computes bitwise the same outputs, gradients and weights" in capsys.readouterr().out
