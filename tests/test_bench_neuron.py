"""The fused-LIF benchmark scripts run (at tiny sizes, not timed) so they never rot."""
import pytest
from conftest import load_benchmark


def test_bench_neuron_tiny(capsys):
    bench = load_benchmark("bench_neuron")
    result = bench.main(["--tiny", "--threads", "1"])
    (row,) = result["speed"]  # one T x one size; the agreement check ran before timing
    assert {"snnlab fused", "snnlab reference"} <= set(row)
    assert all(row[k] > 0 for k in row if k not in ("threads", "T", "neurons"))
    assert "snnlab ref/fused" in capsys.readouterr().out  # the ratio columns are printed


def test_bench_neuron_rejects_bad_sizes():
    bench = load_benchmark("bench_neuron")
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])


def test_bench_fused_memory_tiny():
    bench = load_benchmark("bench_fused_memory")
    res = bench.main(["--tiny"])
    s = res["saved"]
    assert s["fused"]["in_lif"] < s["reference"]["in_lif"]
    assert res["ratio_total"] == s["fused"]["total"] / s["reference"]["total"] < 1
